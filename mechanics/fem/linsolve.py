"""Sparse direct factorisations of the reduced stiffness, reusable across solves and refactorisations.

Backends, best first: MKL PARDISO through ``pypardiso`` (METIS ordering, supernodal BLAS-3 kernels, symbolic
analysis reused by :meth:`Factorisation.refactor`), ``cholespy`` (CHOLMOD), SciPy SuperLU. On this project's
2-core machines PARDISO factorises the 20k-tetrahedron stiffness about 7x faster than SuperLU. The optional
backends are used when installed; SuperLU always works. PARDISO runs on one MKL thread unless
``MKL_NUM_THREADS`` says otherwise: with two threads on the 2-core machines both the interactive steps
(mean 18 vs 13 ms, worst 55 vs 26 ms at 20k tetrahedra) and the factorisations were slower (measured).

PARDISO can also factorise in single precision (:class:`Factorisation` ``single=True``), used only as a
preconditioner of conjugate gradients on the double-precision matrix (:func:`pcg`), and
:class:`TangentSolver` solves the successive tangents of a Newton iteration by reusing factors.

PARDISO's symbolic analysis (METIS ordering + symbolic factorisation, ~50 ms at 20k tetrahedra) depends only on
the sparsity pattern. A released factorisation (:meth:`Factorisation.release`, :meth:`TangentSolver.release`)
goes to a small process-wide cache keyed by a hash of the pattern (and the matrix type / precision), so the next
solve on the same mesh (next load case, next push of a retractor) factorises numerically only. Each cached
solver is owned by one user at a time (taken out under a lock), so worker threads never share a PARDISO handle.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib
import os
import threading
from collections import OrderedDict
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


_ANALYSES = [0]
_ANALYSES_LOCK = threading.Lock()


def _count_analysis() -> None:
    with _ANALYSES_LOCK:
        _ANALYSES[0] += 1


def analysis_count() -> int:
    """PARDISO symbolic analyses run so far in this process (all threads): for tests and benchmarks."""
    return _ANALYSES[0]


def _pattern_key(indptr: NDArray, indices: NDArray, *, spd: bool, single: bool) -> tuple[Any, ...]:
    """Identifies an analysis: matrix size and type, precision, and a 128-bit hash of the CSR pattern."""
    digest = hashlib.blake2b(np.ascontiguousarray(indptr, dtype=np.int64).tobytes(), digest_size=16)
    digest.update(np.ascontiguousarray(indices, dtype=np.int64).tobytes())
    return len(indptr) - 1, len(indices), digest.hexdigest(), bool(spd), bool(single)


class _AnalysisCache:
    """Idle analysed PARDISO solvers by pattern key, least recently released dropped beyond ``max_solvers``.

    A solver is *taken* out (so one thread at a time owns its handle) and *given* back when its user is done.
    Each holds its last numeric factor too (tens of MB at 20k tetrahedra), hence the small bound.
    """

    def __init__(self, max_solvers: int = 4) -> None:
        self.max_solvers = max_solvers
        self._idle: OrderedDict[int, tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            for ident, (k, impl) in reversed(self._idle.items()):
                if k == key:
                    del self._idle[ident]
                    return impl
        return None

    def give(self, impl: Any) -> None:
        dropped = []
        with self._lock:
            self._idle[id(impl)] = (impl.key, impl)
            while len(self._idle) > self.max_solvers:
                dropped.append(self._idle.popitem(last=False))
        del dropped  # freed (PARDISO memory released) outside the lock

    def clear(self) -> None:
        with self._lock:
            self._idle.clear()

    def __len__(self) -> int:
        return len(self._idle)


ANALYSIS_CACHE = _AnalysisCache()


class _Pardiso:
    """Symmetric PARDISO on the upper triangle (mtype 2: SPD, -2: symmetric indefinite).

    ``single=True`` factorises in single precision (iparm[27]): half the memory traffic, so the numeric
    factorisation takes about 0.55x and a solve about 0.45x the double-precision time on this project's 2-core
    machines (20k tetrahedra: 68 vs 122 ms, 1.7 vs 3.9 ms). The solution is then accurate to only ~1e-4
    relative: such a factor is meant as a preconditioner (see :func:`pcg`), never as the final answer.
    """

    def __init__(self, matrix: sp.csr_matrix, *, spd: bool, single: bool = False, factor: bool = True) -> None:
        csr = matrix.tocsr()
        csr.sort_indices()
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        self._mask = csr.indices >= rows
        upper_counts = np.bincount(rows[self._mask], minlength=csr.shape[0])
        indptr = np.zeros(csr.shape[0] + 1, dtype=np.int64)
        np.cumsum(upper_counts, out=indptr[1:])
        self._dtype = np.float32 if single else np.float64
        self._values = np.ascontiguousarray(csr.data[self._mask], dtype=self._dtype)
        self._solver = _new_pardiso_solver(mtype=2 if spd else -2)
        self._n = csr.shape[0]
        if self._n == 0 or not np.all(upper_counts):
            raise ValueError("matrix has an empty row (singular)")
        # 1-based index arrays kept (pypardiso would convert them on every call)
        self._ia = indptr.astype(np.int32) + 1
        self._ja = np.ascontiguousarray(csr.indices[self._mask], dtype=np.int32) + 1
        iparm = self._solver.iparm
        iparm[:] = 0
        iparm[0] = 1  # the values below, not PARDISO's defaults
        iparm[1] = 2  # METIS nested dissection
        # no iterative refinement (iparm[7] = 0): PARDISO's default spends two extra solves per call on it
        # (measured 3x slower solves); the residual of the direct solve is already at round-off here
        iparm[9] = 8  # pivot perturbation 1e-8 (symmetric indefinite)
        iparm[20] = 1  # Bunch-Kaufman pivoting (symmetric indefinite)
        iparm[27] = int(single)
        self.single = single
        self.key = _pattern_key(csr.indptr, csr.indices, spd=spd, single=single)
        _count_analysis()
        # analysis alone needs no meaningful values (symmetric types: ordering from the pattern only)
        self._call(12 if factor else 11)

    def _call(self, phase: int, b: NDArray | None = None) -> NDArray:
        s = self._solver
        nrhs = 1 if b is None or b.ndim == 1 else b.shape[1]
        rhs = np.zeros(self._n, dtype=self._dtype) if b is None else np.asfortranarray(b, dtype=self._dtype)
        x = np.zeros_like(rhs)
        error = ctypes.c_int32(0)
        int_p, void_p = ctypes.POINTER(ctypes.c_int32), ctypes.c_void_p
        s._mkl_pardiso(s.pt.ctypes.data_as(ctypes.POINTER(s._pt_type[0])), ctypes.byref(ctypes.c_int32(1)),
                       ctypes.byref(ctypes.c_int32(1)), ctypes.byref(ctypes.c_int32(s.mtype)),
                       ctypes.byref(ctypes.c_int32(phase)), ctypes.byref(ctypes.c_int32(self._n)),
                       self._values.ctypes.data_as(void_p), self._ia.ctypes.data_as(int_p),
                       self._ja.ctypes.data_as(int_p), s.perm.ctypes.data_as(int_p), ctypes.byref(ctypes.c_int32(nrhs)),
                       s.iparm.ctypes.data_as(int_p), ctypes.byref(ctypes.c_int32(0)), rhs.ctypes.data_as(void_p),
                       x.ctypes.data_as(void_p), ctypes.byref(error))
        if error.value != 0:
            raise ArithmeticError(f"PARDISO phase {phase} failed (error {error.value})")
        return np.ascontiguousarray(x, dtype=np.float64)

    def refactor(self, data: NDArray) -> None:
        self._values[:] = data[self._mask]
        self._call(22)

    @property
    def negative_eigenvalues(self) -> int:
        """Negative eigenvalues of the last factorised matrix (symmetric indefinite only; iparm[22])."""
        return int(self._solver.iparm[22])

    def solve(self, b: NDArray) -> NDArray:
        return self._call(33, b).reshape(b.shape)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # freeing at interpreter exit may fail harmlessly
            self._solver.free_memory(everything=True)


class Factorisation:
    """A reusable factorisation of a symmetric sparse matrix; ``solve(b)`` returns x with A x = b.

    ``spd=False`` selects a symmetric-indefinite (or pivoting LU) factorisation, for tangents that may lose
    positive definiteness (neo-Hookean). ``refactor(data)`` factorises new values on the same pattern.
    ``single=True`` asks for a single-precision factor (PARDISO only; other backends stay in double): use
    it only as a preconditioner. ``single`` says what was obtained.

    ``analyse_only=True`` (PARDISO) runs the symbolic analysis of the pattern and leaves the numeric
    factorisation to the first :meth:`refactor`; other backends factorise at once. A PARDISO analysis of the
    same pattern released earlier (:meth:`release`) is reused from :data:`ANALYSIS_CACHE`; ``analysed``
    says whether this factorisation ran a new symbolic analysis.
    """

    def __init__(self, matrix: sp.csr_matrix, *, spd: bool = True, backend: str | None = None,
                 single: bool = False, analyse_only: bool = False) -> None:
        self.n = matrix.shape[0]
        self.spd = spd
        self.single = False
        self.analysed = False
        self.factorised = True
        self._want_single = single
        self._analyse_only = analyse_only
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
            if not matrix.has_sorted_indices:
                matrix = matrix.sorted_indices()
            key = _pattern_key(matrix.indptr, matrix.indices, spd=self.spd, single=self._want_single)
            impl = ANALYSIS_CACHE.take(key)
            if impl is None:
                impl = _Pardiso(matrix, spd=self.spd, single=self._want_single, factor=not self._analyse_only)
                self.analysed = True
                self.factorised = not self._analyse_only
            elif not self._analyse_only:
                try:
                    impl.refactor(matrix.data)
                except ArithmeticError:
                    ANALYSIS_CACHE.give(impl)  # the analysis stays good for the next user
                    raise
            else:
                self.factorised = False
            self.single = impl.single
            return impl
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

    @property
    def negative_eigenvalues(self) -> int | None:
        """Inertia from a symmetric-indefinite PARDISO factorisation; None when the backend does not say."""
        return self._impl.negative_eigenvalues if self.kind == "pardiso" and not self.spd else None

    def refactor(self, data: NDArray[np.float64]) -> None:
        """Factorise new values on the same sparsity pattern (reuses the symbolic analysis when possible)."""
        if self._impl is None:
            raise RuntimeError("factorisation was released")
        if self.kind == "pardiso":
            self.factorised = False
            self._impl.refactor(data)
            self.factorised = True
            return
        self._matrix = sp.csr_matrix((data, self._matrix.indices, self._matrix.indptr), shape=self._matrix.shape)
        self._impl = self._make(self.kind, self._matrix)

    def release(self) -> None:
        """Done with this factorisation: a PARDISO analysis goes to :data:`ANALYSIS_CACHE` for the next solve on
        the same pattern. The factorisation is unusable afterwards; releasing twice is harmless."""
        impl, self._impl = self._impl, None
        if impl is not None and self.kind == "pardiso":
            ANALYSIS_CACHE.give(impl)

    def solve(self, b: NDArray[np.float64]) -> NDArray[np.float64]:
        if self._impl is None:
            raise RuntimeError("factorisation was released")
        if not self.factorised:
            raise RuntimeError("no numeric factorisation yet (analysed only): call refactor first")
        b = np.ascontiguousarray(b, dtype=np.float64)
        if self.kind == "cholmod":
            x = np.empty_like(b)
            self._impl.solve(b, x)
            return x
        x = self._impl.solve(b)
        if not np.all(np.isfinite(x)):
            raise ArithmeticError("factorisation produced non-finite values (singular matrix)")
        return x


def factorise(matrix: sp.csr_matrix, *, spd: bool = True, backend: str | None = None,
              single: bool = False) -> Factorisation:
    return Factorisation(matrix, spd=spd, backend=backend, single=single)


def clear_analysis_cache() -> None:
    """Free every cached PARDISO analysis (and its factor memory)."""
    ANALYSIS_CACHE.clear()


def pcg(matrix: Callable[[NDArray], NDArray], rhs: NDArray, precond: Any, guess: NDArray, tol: float,
        update_tol: float, max_iter: int, *, check_at: int = 0, required_rate: float = 1.0,
        guess_product: NDArray | None = None) -> tuple[NDArray, int, float]:
    """Preconditioned conjugate gradients with operator ``matrix``; returns (x, iterations, relative residual).

    Stops at relative residual ``tol``, or when an update moved no entry by more than ``update_tol``, or
    after ``max_iter`` iterations, or (``check_at`` > 0) at iteration ``check_at`` when the relative residual
    is still above ``required_rate ** check_at`` (convergence too slow to be worth continuing).
    ``guess_product``: ``matrix(guess)`` when the caller already has it (saves one product).
    """
    norm_b = float(np.linalg.norm(rhs))
    if norm_b == 0.0:
        return np.zeros_like(rhs), 0, 0.0
    x = guess.copy()
    r = rhs - (matrix(x) if guess_product is None else guess_product)
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
        if iterations == check_at and rel > required_rate ** check_at:
            break
        z = precond.solve(r)
        rz_new = float(r @ z)
        d = z + (rz_new / rz) * d
        rz = rz_new
    return x, iterations, rel


class TangentSolver:
    """Solves a sequence of systems ``K_k x = b`` on one sparsity pattern (Newton tangents), reusing factors.

    Each system is solved to ``tolerance`` relative residual (``||b - K_k x|| <= tolerance ||b||``) by
    conjugate gradients preconditioned by the factorisation of an *earlier* tangent of the sequence. The
    current tangent is refactorised (numeric phase only: the symbolic analysis is reused) only when reuse
    stops paying: PCG with the old factor did not converge within ``reuse_iterations``, or the last solve
    needed more than ``refactor_after`` iterations (defaults chosen by measurement on the 20k-tetrahedron
    neo-Hookean benchmark: a PCG iteration costs ~3 ms, a refactorisation ~70 ms). With PARDISO the factor
    is single precision (0.55x the factorisation time), which PCG corrects to ``tolerance``. A tangent that
    is not positive definite is solved directly by a symmetric-indefinite (Bunch-Kaufman) factorisation in
    double precision, until its inertia shows a positive-definite tangent again. Accuracy does not depend
    on the reuse, only the number of PCG iterations does.

    The symbolic analyses are done once per pattern: :meth:`analyse` runs the positive-definite one up front
    (problem set-up), and :meth:`release` (or leaving a ``with`` block) hands the analysed factorisations to
    :data:`ANALYSIS_CACHE`, from which a later solver on the same pattern takes them instead of analysing again.

    ``stats`` counts ``factorisations`` (positive-definite, for PCG), ``indefinite_factorisations``,
    ``analyses`` (new PARDISO symbolic analyses), ``solves`` and ``pcg_iterations``; ``last_iterations`` and
    ``last_refactorised`` describe the last solve.
    """

    def __init__(self, indptr: NDArray, indices: NDArray, *, tolerance: float = 1e-10, max_iterations: int = 40,
                 reuse_iterations: int = 20, refactor_after: int = 6, backend: str | None = None) -> None:
        self._indptr = indptr
        self._indices = indices
        self.tolerance = float(tolerance)
        self.max_iterations = int(max_iterations)
        self.reuse_iterations = int(reuse_iterations)
        self.refactor_after = int(refactor_after)
        self._backend = backend or available_backends()[0]
        self._factor: Factorisation | None = None
        self._indefinite: Factorisation | None = None
        self._indefinite_mode = False
        self._matrix: sp.csr_matrix | None = None
        self._data: NDArray | None = None
        self._stale = True
        self._tol = self.tolerance
        self.stats = {"factorisations": 0, "indefinite_factorisations": 0, "analyses": 0, "solves": 0,
                      "pcg_iterations": 0}
        self.last_iterations = 0
        self.last_refactorised = False

    @property
    def kind(self) -> str:
        if self._factor is None:
            return self._backend
        return f"{self._factor.kind}{' single-precision' if self._factor.single else ''}"

    def __enter__(self) -> TangentSolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def analyse(self) -> None:
        """Symbolic analysis of the pattern now (set-up), unless done or cached; a no-op without PARDISO."""
        if self._factor is not None or self._backend != "pardiso":
            return
        n = len(self._indptr) - 1
        # placeholder values (identity on the pattern): the symmetric analysis uses the structure only
        data = (self._indices == np.repeat(np.arange(n), np.diff(self._indptr))).astype(np.float64)
        pattern = sp.csr_matrix((data, self._indices, self._indptr), shape=(n, n))
        try:
            self._factor = self._new_factor(pattern, spd=True, single=True, analyse_only=True)
        except (ArithmeticError, RuntimeError, ValueError):
            self._factor = None  # left to the first solve, which handles failures
        self._stale = True

    def release(self) -> None:
        """Hand the analysed factorisations to the cache for the next solve on this pattern; the solver then
        starts afresh (taking them back from the cache if still there)."""
        for factor in (self._factor, self._indefinite):
            if factor is not None:
                factor.release()
        self._factor = self._indefinite = None
        self._indefinite_mode = False
        self._stale = True

    def _new_factor(self, matrix: sp.csr_matrix, *, spd: bool, single: bool = False, analyse_only: bool = False,
                    backend: str | None = None) -> Factorisation:
        factor = Factorisation(matrix, spd=spd, backend=backend or self._backend, single=single,
                               analyse_only=analyse_only)
        self.stats["analyses"] += int(factor.analysed)
        return factor

    def set_matrix(self, data: NDArray[np.float64]) -> None:
        """The CSR data of the next tangent (same pattern as the first)."""
        n = len(self._indptr) - 1
        self._data = np.array(data, dtype=np.float64)
        self._matrix = sp.csr_matrix((self._data, self._indices, self._indptr), shape=(n, n))

    def solve(self, b: NDArray[np.float64], *, refactor: bool = False,
              tolerance: float | None = None) -> NDArray[np.float64]:
        """x with ||b - K x|| <= tolerance ||b|| for the tangent last given to :meth:`set_matrix`.

        ``refactor=True`` factorises this tangent first instead of trying an earlier factor; ``tolerance``
        loosens the relative residual for this solve (an inexact-Newton forcing term; never tighter than the
        solver's own ``tolerance``). An indefinite tangent is solved directly, to round-off.
        """
        if self._matrix is None or self._data is None:
            raise RuntimeError("set_matrix must be called before solve")
        if refactor:
            self._stale = True
        self.stats["solves"] += 1
        self.last_refactorised = False
        self.last_iterations = 0
        b = np.ascontiguousarray(b, dtype=np.float64)
        self._tol = self.tolerance if tolerance is None else max(float(tolerance), self.tolerance)
        if self._indefinite_mode:
            return self._solve_indefinite(b)
        if self._factor is not None and not self._stale:
            x = self._pcg(b, self.reuse_iterations)
            if x is not None:
                return x
        try:
            if self._factor is None:
                self._factor = self._new_factor(self._matrix, spd=True, single=True)
            else:
                self._factor.refactor(self._data)
        except (ArithmeticError, RuntimeError):  # not positive definite
            if self._factor is not None:
                self._factor.release()  # its analysis is still good: taken back from the cache next time
            self._factor = None
            return self._solve_indefinite(b)
        self.stats["factorisations"] += 1
        self.last_refactorised = True
        if not self._factor.single:  # an exact factor of this tangent (and the preconditioner for the next ones)
            self._stale = False
            return self._factor.solve(b)
        x = self._pcg(b, self.max_iterations)
        return x if x is not None else self._solve_indefinite(b)

    def _pcg(self, b: NDArray, max_iterations: int) -> NDArray | None:
        assert self._matrix is not None
        try:
            # a reused factor that contracts too slowly is given up after 4 iterations, not after the whole budget
            x, its, rel = pcg(self._matrix.dot, b, self._factor, np.zeros_like(b), self._tol, 0.0,
                              max_iterations, check_at=4, required_rate=self._tol ** (1.0 / max_iterations))
        except ArithmeticError:
            return None
        self.last_iterations += its
        self.stats["pcg_iterations"] += its
        if rel <= self._tol and np.all(np.isfinite(x)):
            self._stale = its > self.refactor_after
            return x
        self._stale = True
        return None

    def _solve_indefinite(self, b: NDArray) -> NDArray:
        assert self._matrix is not None and self._data is not None
        if self._indefinite is None:
            # CHOLMOD (cholespy) has no indefinite factorisation: SuperLU's pivoting LU then
            backend = self._backend if self._backend in ("pardiso", "superlu") else "superlu"
            self._indefinite = self._new_factor(self._matrix, spd=False, backend=backend)
        else:
            self._indefinite.refactor(self._data)
        self.stats["indefinite_factorisations"] += 1
        self.last_refactorised = True
        # back to the positive-definite route once the tangent is positive definite again (PARDISO reports
        # the inertia; other backends do not, so they try that route at every tangent)
        negative = self._indefinite.negative_eigenvalues
        self._indefinite_mode = negative is not None and negative > 0
        self._stale = True
        return self._indefinite.solve(b)
