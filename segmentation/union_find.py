"""Union-find (disjoint sets) on an int64 parent array, for numba kernels.

The smaller root always wins, so a component's root is its smallest member: callers rely on it.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray


@njit(cache=True)
def find(parent: NDArray[np.int64], x: int) -> int:
    """Root of ``x``, compressing the path (roots never change)."""
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@njit(cache=True)
def union(parent: NDArray[np.int64], a: int, b: int) -> None:
    """Join the sets of ``a`` and ``b`` under the smaller root."""
    ra = find(parent, a)
    rb = find(parent, b)
    if ra != rb:
        if ra < rb:
            parent[rb] = ra
        else:
            parent[ra] = rb
