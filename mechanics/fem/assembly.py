"""Sparse assembly straight into a fixed CSR pattern of the free dofs (numba kernels).

The pattern (row pointers, column indices and, for every element-matrix entry, its slot in the CSR data
array) is built once per mesh and constraint set; each later assembly is a single pass over the elements
that adds into the data array, with no COO->CSR conversion or sorting. This is what makes repeated
assembly (co-rotational steps, Newton iterations) cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray


@nb.njit(cache=True)
def _node_slots(tets: NDArray, node_indptr: NDArray, node_indices: NDArray) -> NDArray:
    m = tets.shape[0]
    slots = np.empty((m, 4, 4), dtype=np.int64)
    for e in range(m):
        for a in range(4):
            p = tets[e, a]
            lo = node_indptr[p]
            hi = node_indptr[p + 1]
            for b in range(4):
                q = tets[e, b]
                left, right = lo, hi
                while left < right:  # binary search for q in the sorted neighbours of p
                    mid = (left + right) // 2
                    if node_indices[mid] < q:
                        left = mid + 1
                    else:
                        right = mid
                slots[e, a, b] = left
    return slots


@nb.njit(cache=True)
def _dof_pattern(node_indptr: NDArray, node_indices: NDArray, red: NDArray, n_free: int) -> tuple:
    n_nodes = node_indptr.shape[0] - 1
    free_count = np.zeros(n_nodes, dtype=np.int64)
    for p in range(n_nodes):
        for i in range(3):
            if red[3 * p + i] >= 0:
                free_count[p] += 1
    col_offset = np.zeros(node_indices.shape[0], dtype=np.int64)
    row_len = np.zeros(n_nodes, dtype=np.int64)
    for p in range(n_nodes):
        acc = 0
        for s in range(node_indptr[p], node_indptr[p + 1]):
            col_offset[s] = acc
            acc += free_count[node_indices[s]]
        row_len[p] = acc
    indptr = np.zeros(n_free + 1, dtype=np.int64)
    for p in range(n_nodes):
        for i in range(3):
            r = red[3 * p + i]
            if r >= 0:
                indptr[r + 1] = row_len[p]
    for r in range(n_free):
        indptr[r + 1] += indptr[r]
    indices = np.empty(indptr[n_free], dtype=np.int64)
    for p in range(n_nodes):
        for i in range(3):
            r = red[3 * p + i]
            if r < 0:
                continue
            k = indptr[r]
            for s in range(node_indptr[p], node_indptr[p + 1]):
                q = node_indices[s]
                for j in range(3):
                    c = red[3 * q + j]
                    if c >= 0:
                        indices[k] = c
                        k += 1
    return indptr, indices, col_offset


@nb.njit(cache=True)
def _element_positions(tets: NDArray, slots: NDArray, red: NDArray, indptr: NDArray, col_offset: NDArray) -> NDArray:
    m = tets.shape[0]
    pos = np.full((m, 12, 12), -1, dtype=np.int64)
    for e in range(m):
        for a in range(4):
            p = tets[e, a]
            for i in range(3):
                r = red[3 * p + i]
                if r < 0:
                    continue
                for b in range(4):
                    q = tets[e, b]
                    base = indptr[r] + col_offset[slots[e, a, b]]
                    k_free = 0
                    for j in range(3):
                        if red[3 * q + j] >= 0:
                            pos[e, 3 * a + i, 3 * b + j] = base + k_free
                            k_free += 1
    return pos


@dataclass(frozen=True, eq=False)
class Pattern:
    """CSR pattern of the stiffness restricted to free dofs.

    Attributes
    ----------
    free : (3N,) bool, True where the dof is unknown.
    red : (3N,) reduced index of each dof, -1 for prescribed dofs.
    indptr, indices : CSR structure of the (n_free, n_free) matrix.
    positions : (M, 12, 12) slot of each element-matrix entry in the CSR data (-1: not free-free).
    """

    free: NDArray[np.bool_]
    red: NDArray[np.int64]
    indptr: NDArray[np.int64]
    indices: NDArray[np.int64]
    positions: NDArray[np.int64]

    @property
    def n_free(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.indices)

    def matrix(self, data: NDArray[np.float64]) -> sp.csr_matrix:
        n = self.n_free
        return sp.csr_matrix((data, self.indices, self.indptr), shape=(n, n))


def build_pattern(n_points: int, tets: NDArray[np.int64], free: NDArray[np.bool_]) -> Pattern:
    """The free-dof CSR pattern for a tetrahedral mesh (``free``: (3N,) bool)."""
    tets = np.ascontiguousarray(tets, dtype=np.int64)
    rows = np.repeat(tets, 4, axis=1).ravel()
    cols = np.tile(tets, (1, 4)).ravel()
    keys = np.unique(rows * n_points + cols)
    node_rows, node_cols = np.divmod(keys, n_points)
    node_indptr = np.zeros(n_points + 1, dtype=np.int64)
    np.cumsum(np.bincount(node_rows, minlength=n_points), out=node_indptr[1:])
    node_indices = np.ascontiguousarray(node_cols, dtype=np.int64)
    free = np.asarray(free, dtype=bool)
    red = np.full(3 * n_points, -1, dtype=np.int64)
    red[free] = np.arange(int(free.sum()))
    slots = _node_slots(tets, node_indptr, node_indices)
    indptr, indices, col_offset = _dof_pattern(node_indptr, node_indices, red, int(free.sum()))
    positions = _element_positions(tets, slots, red, indptr, col_offset)
    if len(indices) < 2 ** 31 - 1:  # half the memory traffic of every assembly pass
        positions = positions.astype(np.int32)
    return Pattern(free=free, red=red, indptr=indptr, indices=indices, positions=positions)


@nb.njit(cache=True)
def scatter(positions: NDArray, element_matrices: NDArray, out: NDArray) -> None:
    """Add (M, 12, 12) element matrices into the CSR data ``out`` (zeroed by the caller)."""
    m = positions.shape[0]
    for e in range(m):
        for r in range(12):
            for c in range(12):
                p = positions[e, r, c]
                if p >= 0:
                    out[p] += element_matrices[e, r, c]


@nb.njit(cache=True)
def add_diagonal(indptr: NDArray, indices: NDArray, diag: NDArray, out: NDArray) -> None:
    """Add ``diag`` (n_free,) to the diagonal of the CSR data ``out``."""
    for r in range(indptr.shape[0] - 1):
        for k in range(indptr[r], indptr[r + 1]):
            if indices[k] == r:
                out[k] += diag[r]
                break


@nb.njit(cache=True)
def linear_internal_force(tets: NDArray, ke: NDArray, u: NDArray) -> NDArray:
    """(3N,) internal force K u (N) from element matrices and the (N, 3) displacement (mm)."""
    f = np.zeros(u.shape[0] * 3)
    ue = np.empty(12)
    for e in range(tets.shape[0]):
        for a in range(4):
            for i in range(3):
                ue[3 * a + i] = u[tets[e, a], i]
        for r in range(12):
            acc = 0.0
            for c in range(12):
                acc += ke[e, r, c] * ue[c]
            f[3 * tets[e, r // 3] + r % 3] += acc
    return f
