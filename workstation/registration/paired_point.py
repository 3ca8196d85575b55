"""Paired-point rigid registration (Arun/Horn SVD) with fiducial and predicted target errors.

The predicted target registration error follows Fitzpatrick, West & Maurer (IEEE TMI 1998):

    TRE^2(r) = FLE^2 / N * (1 + 1/3 * sum_k d_k^2 / f_k^2)

with ``d_k`` the distance of the target from the k-th principal axis of the fiducial configuration
and ``f_k`` the RMS distance of the fiducials from that axis. ``FLE`` (the RMS fiducial localisation
error, all axes together) is given by the caller or estimated from the fit itself through
``<FRE^2> = (1 - 2/N) FLE^2`` (same paper), i.e. ``FLE^2 = FRE^2 N / (N - 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError

FLE_FROM_FRE = "FLE^2 = FRE_rms^2 * N / (N - 2) (Fitzpatrick-West-Maurer 1998)"


@dataclass(frozen=True)
class PairedPointResult:
    """A rigid fit ``moving -> fixed`` and its errors (mm).

    Attributes
    ----------
    matrix : (4, 4) rigid transform mapping moving points (e.g. image LPS) onto fixed ones (e.g. patient).
    fre_per_point_mm : (N,) distance between each mapped moving fiducial and its fixed partner.
    fre_mm : RMS of ``fre_per_point_mm``.
    fle_mm : the fiducial localisation error used for the TRE prediction.
    fle_source : how ``fle_mm`` was obtained.
    predicted_tre_mm : (T,) Fitzpatrick-West RMS TRE at each target (in the moving frame).
    """

    matrix: NDArray[np.float64]
    fre_per_point_mm: NDArray[np.float64]
    fre_mm: float
    fle_mm: float
    fle_source: str
    predicted_tre_mm: NDArray[np.float64]


def _points(values: ArrayLike, what: str) -> NDArray[np.float64]:
    try:
        points = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise InputError(f"{what}: not a list of x,y,z points") from None
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(f"{what}: expected N x 3 points (x,y,z in mm), got shape {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError(f"{what}: holds a non-finite value (NaN or inf)")
    return points


def check_fiducials(moving: ArrayLike, fixed: ArrayLike, *, names: tuple[str, str] = ("moving points", "fixed points")
                    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Validated (N, 3) fiducial arrays; :class:`InputError` for too few, mismatched or collinear ones."""
    a = _points(moving, names[0])
    b = _points(fixed, names[1])
    if len(a) != len(b):
        raise InputError(f"{names[0]}: {len(a)} points but {names[1]} has {len(b)}; they are paired by order")
    if len(a) < 3:
        raise InputError(f"{names[0]}: a rigid registration needs at least 3 paired points, got {len(a)}")
    for pts, what in ((a, names[0]), (b, names[1])):
        sv = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False)
        extent = max(float(sv[0]), 1e-12)
        if sv[1] <= 1e-6 * extent:
            raise InputError(f"{what}: the points are collinear (or coincide); a rigid registration needs "
                             "at least 3 points not on one line")
    return a, b


def rigid_fit(moving: NDArray[np.float64], fixed: NDArray[np.float64],
              weights: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """(4, 4) least-squares rigid transform moving -> fixed (Arun 1987 SVD with Umeyama's reflection guard).

    Inputs are assumed valid (see :func:`check_fiducials`); ``weights`` (N,) are optional.
    """
    w = np.ones(len(moving)) if weights is None else np.asarray(weights, dtype=float)
    w = w / w.sum()
    ca = w @ moving
    cb = w @ fixed
    h = (moving - ca).T @ ((fixed - cb) * w[:, None])
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    m = np.eye(4)
    m[:3, :3] = r
    m[:3, 3] = cb - r @ ca
    return m


def fitzpatrick_west_tre(fiducials: ArrayLike, targets: ArrayLike, *, fle_mm: float) -> NDArray[np.float64]:
    """(T,) predicted RMS TRE (mm) at each target for fiducials (N, 3) with RMS localisation error ``fle_mm``.

    Both arrays are in the same frame (the frame where the fiducial configuration's axes are taken).
    """
    f = np.asarray(fiducials, dtype=float)
    t = np.atleast_2d(np.asarray(targets, dtype=float))
    if t.size == 0:
        return np.empty(0)
    centre = f.mean(axis=0)
    x = f - centre
    _, _, axes = np.linalg.svd(x, full_matrices=False)  # rows: principal axes
    # squared distance of each fiducial / target from each principal axis
    fx = np.sum(x**2, axis=1)[:, None] - (x @ axes.T) ** 2
    f2 = fx.mean(axis=0)
    y = t - centre
    d2 = np.sum(y**2, axis=1)[:, None] - (y @ axes.T) ** 2
    ratio = np.sum(d2 / f2, axis=1)
    return np.sqrt(fle_mm**2 / len(f) * (1.0 + ratio / 3.0))


def register_paired_points(moving: ArrayLike, fixed: ArrayLike, *, targets: ArrayLike | None = None,
                           fle_mm: float | None = None,
                           names: tuple[str, str] = ("moving points", "fixed points")) -> PairedPointResult:
    """Rigid registration of paired fiducials, with FRE per point and predicted TRE at targets.

    Parameters
    ----------
    moving : (N, 3) fiducials in the source frame (e.g. image LPS mm).
    fixed : (N, 3) the same fiducials in the destination frame (e.g. patient/tracker mm), same order.
    targets : (T, 3) target points in the source frame, for the predicted TRE.
    fle_mm : known RMS fiducial localisation error; estimated from the residuals (:data:`FLE_FROM_FRE`)
        when ``None`` (defined from N = 3, but with few fiducials the estimate itself is uncertain).
    names : how error messages call the two point sets.
    """
    a, b = check_fiducials(moving, fixed, names=names)
    m = rigid_fit(a, b)
    residual = a @ m[:3, :3].T + m[:3, 3] - b
    fre_each = np.linalg.norm(residual, axis=1)
    fre = float(np.sqrt(np.mean(fre_each**2)))
    n = len(a)
    if fle_mm is None:
        fle = fre * np.sqrt(n / (n - 2))
        source = FLE_FROM_FRE
    else:
        if not (np.isfinite(fle_mm) and fle_mm >= 0):
            raise InputError(f"fle_mm: must be a finite number >= 0, got {fle_mm}")
        fle, source = float(fle_mm), "given"
    t = np.empty((0, 3)) if targets is None else _points(targets, "targets")
    tre = fitzpatrick_west_tre(a, t, fle_mm=fle) if len(t) else np.empty(0)
    return PairedPointResult(matrix=m, fre_per_point_mm=fre_each, fre_mm=fre, fle_mm=float(fle), fle_source=source,
                             predicted_tre_mm=tre)
