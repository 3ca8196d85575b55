"""Sparse direct factorisations of the reduced stiffness, reusable across solves and refactorisations.

Backends, best first: MKL PARDISO through ``pypardiso`` (METIS ordering, supernodal BLAS-3 kernels, symbolic
analysis reused by :meth:`Factorisation.refactor`), ``cholespy`` (CHOLMOD), SciPy SuperLU. On this project's
2-core machines PARDISO factorises the 20k-tetrahedron stiffness about 7x faster than SuperLU. The optional
backends are used when installed; SuperLU always works.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import NDArray

_OPTIONAL: dict[str, Any] = {}


def _optional(module: str) -> Any:
    """Import an optional backend on first use (pypardiso loads MKL: about a second), None when absent."""
    if module not in _OPTIONAL:
        try:
            _OPTIONAL[module] = importlib.import_module(module)
        except ImportError:  # pragma: no cover - depends on the environment
            _OPTIONAL[module] = None
    return _OPTIONAL[module]


def available_backends() -> list[str]:
    names = ["pardiso"] if _optional("pypardiso") is not None else []
    names += ["cholmod"] if _optional("cholespy") is not None else []
    return [*names, "superlu"]


def _new_pardiso_solver(mtype: int) -> Any:
    """A PyPardisoSolver; its library search (a recursive glob, ~0.5 s) runs only once per process."""
    solver = _optional("pypardiso").PyPardisoSolver(mtype=mtype)
    if "PYPARDISO_MKL_RT" not in os.environ:
        os.environ["PYPARDISO_MKL_RT"] = solver.libmkl._name
        if "MKL_NUM_THREADS" not in os.environ:
            # one MKL thread unless asked otherwise: MKL and numba threads fighting over 2 cores made
            # interactive steps 1.5x slower (measured, benchmarks/bench_fem.py)
            with contextlib.suppress(AttributeError):
                solver.libmkl.MKL_Set_Num_Threads(ctypes.c_int(1))
    return solver


class _Pardiso:
    """Symmetric PARDISO on the upper triangle (mtype 2: SPD, -2: symmetric indefinite)."""

    def __init__(self, matrix: sp.csr_matrix, *, spd: bool) -> None:
        csr = matrix.tocsr()
        csr.sort_indices()
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        self._mask = csr.indices >= rows
        upper_counts = np.bincount(rows[self._mask], minlength=csr.shape[0])
        indptr = np.zeros(csr.shape[0] + 1, dtype=np.int64)
        np.cumsum(upper_counts, out=indptr[1:])
        self._upper = sp.csr_matrix((csr.data[self._mask], csr.indices[self._mask], indptr), shape=csr.shape)
        self._solver = _new_pardiso_solver(mtype=2 if spd else -2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._solver._check_A(self._upper)
        self._n = csr.shape[0]
        # 1-based index arrays kept (pypardiso would convert them on every call)
        self._ia = np.ascontiguousarray(self._upper.indptr, dtype=np.int32) + 1
        self._ja = np.ascontiguousarray(self._upper.indices, dtype=np.int32) + 1
        self._call(12)
        # no iterative refinement: by default PARDISO spends two extra solves per call on it (measured 3x
        # slower solves); the residual of the direct solve is already at round-off for these matrices
        self._solver.iparm[7] = 0

    def _call(self, phase: int, b: NDArray | None = None) -> NDArray:
        s = self._solver
        nrhs = 1 if b is None or b.ndim == 1 else b.shape[1]
        rhs = np.zeros(self._n) if b is None else np.asfortranarray(b, dtype=np.float64)
        x = np.zeros_like(rhs)
        error = ctypes.c_int32(0)
        int_p, float_p = ctypes.POINTER(ctypes.c_int32), ctypes.POINTER(ctypes.c_double)
        s._mkl_pardiso(s.pt.ctypes.data_as(ctypes.POINTER(s._pt_type[0])), ctypes.byref(ctypes.c_int32(1)),
                       ctypes.byref(ctypes.c_int32(1)), ctypes.byref(ctypes.c_int32(s.mtype)),
                       ctypes.byref(ctypes.c_int32(phase)), ctypes.byref(ctypes.c_int32(self._n)),
                       self._upper.data.ctypes.data_as(float_p), self._ia.ctypes.data_as(int_p),
                       self._ja.ctypes.data_as(int_p), s.perm.ctypes.data_as(int_p), ctypes.byref(ctypes.c_int32(nrhs)),
                       s.iparm.ctypes.data_as(int_p), ctypes.byref(ctypes.c_int32(0)), rhs.ctypes.data_as(float_p),
                       x.ctypes.data_as(float_p), ctypes.byref(error))
        if error.value != 0:
            raise ArithmeticError(f"PARDISO phase {phase} failed (error {error.value})")
        return np.ascontiguousarray(x)

    def refactor(self, data: NDArray) -> None:
        self._upper.data[:] = data[self._mask]
        self._call(22)

    def solve(self, b: NDArray) -> NDArray:
        return self._call(33, b).reshape(b.shape)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # freeing at interpreter exit may fail harmlessly
            self._solver.free_memory(everything=True)


class Factorisation:
    """A reusable factorisation of a symmetric sparse matrix; ``solve(b)`` returns x with A x = b.

    ``spd=False`` selects a symmetric-indefinite (or pivoting LU) factorisation, for tangents that may lose
    positive definiteness (neo-Hookean). ``refactor(data)`` factorises new values on the same pattern.
    """

    def __init__(self, matrix: sp.csr_matrix, *, spd: bool = True, backend: str | None = None) -> None:
        self.n = matrix.shape[0]
        self.spd = spd
        self._matrix = matrix.tocsr()
        self._impl: Any = None
        choices = [backend] if backend else available_backends()
        for choice in choices:
            try:
                self._impl = self._make(choice, self._matrix)
                self.kind = choice
                break
            except Exception as exc:
                last = exc
                continue
        if self._impl is None:
            raise RuntimeError(f"no backend could factorise the matrix ({last})")

    def _make(self, choice: str, matrix: sp.csr_matrix) -> Any:
        if choice == "pardiso" and _optional("pypardiso") is not None:
            return _Pardiso(matrix, spd=self.spd)
        cholespy = _optional("cholespy")
        if choice == "cholmod" and cholespy is not None and self.spd:
            chol = cholespy.CholeskySolverD(self.n, matrix.indptr.astype(np.int32), matrix.indices.astype(np.int32),
                                             np.ascontiguousarray(matrix.data, dtype=np.float64),
                                             cholespy.MatrixType.CSR)
            return chol
        if choice == "superlu":
            if self.spd:
                return spla.splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                 options={"SymmetricMode": True})
            return spla.splu(matrix.tocsc(), permc_spec="COLAMD")
        raise ValueError(f"backend {choice!r} not available")

    def refactor(self, data: NDArray[np.float64]) -> None:
        """Factorise new values on the same sparsity pattern (reuses the symbolic analysis when possible)."""
        if self.kind == "pardiso":
            self._impl.refactor(data)
            return
        self._matrix = sp.csr_matrix((data, self._matrix.indices, self._matrix.indptr), shape=self._matrix.shape)
        self._impl = self._make(self.kind, self._matrix)

    def solve(self, b: NDArray[np.float64]) -> NDArray[np.float64]:
        b = np.ascontiguousarray(b, dtype=np.float64)
        if self.kind == "cholmod":
            x = np.empty_like(b)
            self._impl.solve(b, x)
            return x
        x = self._impl.solve(b)
        if not np.all(np.isfinite(x)):
            raise ArithmeticError("factorisation produced non-finite values (singular matrix)")
        return x


def factorise(matrix: sp.csr_matrix, *, spd: bool = True, backend: str | None = None) -> Factorisation:
    return Factorisation(matrix, spd=spd, backend=backend)


def pcg(matrix: Callable[[NDArray], NDArray], rhs: NDArray, precond: Any, guess: NDArray, tol: float,
         update_tol: float, max_iter: int) -> tuple[NDArray, int, float]:
    """Preconditioned conjugate gradients with operator ``matrix``; returns (x, iterations, relative residual)."""
    norm_b = float(np.linalg.norm(rhs))
    if norm_b == 0.0:
        return np.zeros_like(rhs), 0, 0.0
    x = guess.copy()
    r = rhs - matrix(x)
    rel = float(np.linalg.norm(r)) / norm_b
    if rel <= tol:
        return x, 0, rel
    z = precond.solve(r)
    d = z.copy()
    rz = float(r @ z)
    iterations = 0
    while iterations < max_iter:
        iterations += 1
        ad = matrix(d)
        curvature = float(d @ ad)
        if not curvature > 0:  # not positive definite along d: give up, the caller falls back
            break
        alpha = rz / curvature
        x += alpha * d
        r -= alpha * ad
        rel = float(np.linalg.norm(r)) / norm_b
        if rel <= tol or abs(alpha) * float(np.abs(d).max()) <= update_tol:
            break
        z = precond.solve(r)
        rz_new = float(r @ z)
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, iterations, rel
