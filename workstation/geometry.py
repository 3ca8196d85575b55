"""Small geometry helpers shared by the model and the I/O (LPS millimetres)."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Patient directions of +x, +y, +z in LPS and of their negatives.
_POSITIVE = "LPS"
_NEGATIVE = "RAI"


def affine_from_geometry(
    spacing_mm: ArrayLike, origin_lps: ArrayLike, direction: ArrayLike
) -> NDArray[np.float64]:
    """4x4 matrix mapping ``(i, j, k, 1)`` to LPS mm.

    Parameters
    ----------
    spacing_mm : (3,) voxel size along i, j, k in mm.
    origin_lps : (3,) LPS position of voxel (0, 0, 0) in mm.
    direction : (3, 3) columns are the unit i, j, k axes in LPS.
    """
    spacing = np.asarray(spacing_mm, dtype=float).reshape(3)
    direction = np.asarray(direction, dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * spacing[np.newaxis, :]
    affine[:3, 3] = np.asarray(origin_lps, dtype=float).reshape(3)
    return affine


def geometry_from_affine(
    affine: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Split a 4x4 ``ijk_to_lps`` into ``(spacing_mm, origin_lps, direction)``."""
    affine = np.asarray(affine, dtype=float)
    linear = affine[:3, :3]
    spacing = np.linalg.norm(linear, axis=0)
    return spacing, affine[:3, 3].copy(), linear / spacing[np.newaxis, :]


def apply_affine(affine: ArrayLike, points: ArrayLike) -> NDArray[np.float64]:
    """Apply a 4x4 affine to points of shape (..., 3)."""
    affine = np.asarray(affine, dtype=float)
    points = np.asarray(points, dtype=float)
    return points @ affine[:3, :3].T + affine[:3, 3]


def axis_letter(vector: ArrayLike) -> str:
    """Patient direction an LPS vector points to most, e.g. ``'L'``, ``'A'``, ``'S'``."""
    v = np.asarray(vector, dtype=float)
    axis = int(np.argmax(np.abs(v)))
    return _POSITIVE[axis] if v[axis] >= 0 else _NEGATIVE[axis]


def direction_letters(vector: ArrayLike, *, most: int = 2, floor: float = 0.25) -> str:
    """Patient directions an LPS vector points to, strongest first, as DICOM viewers label an oblique
    image's edges: ``'L'`` along x, ``'PS'`` between posterior and superior. At most ``most`` letters;
    components below ``floor`` of the vector's length are left out."""
    v = np.asarray(vector, dtype=float)
    v = v / np.linalg.norm(v)
    order = np.argsort(-np.abs(v), kind="stable")[:most]
    return "".join(_POSITIVE[a] if v[a] >= 0 else _NEGATIVE[a] for a in order if abs(v[a]) >= floor)


def orientation_code(direction: ArrayLike) -> str:
    """Three-letter code (ITK/DICOM style) of where +i, +j, +k point, e.g. ``'LPS'``."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    return "".join(axis_letter(d[:, c]) for c in range(3))


def plane_name(normal: ArrayLike, *, oblique_tolerance_deg: float = 1.0) -> str:
    """``'axial'``, ``'coronal'``, ``'sagittal'`` or ``'oblique'`` from a slice normal."""
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    axis = int(np.argmax(np.abs(n)))
    angle = np.degrees(np.arccos(min(1.0, abs(n[axis]))))
    if angle > oblique_tolerance_deg:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def nearest_axes(direction: ArrayLike) -> list[tuple[int, float]]:
    """For the patient axes x, y, z (L, P, S): the volume axis (0 = i, 1 = j, 2 = k) nearest each and
    the sign of their alignment, one volume axis each.

    ``direction`` (3, 3) holds the unit LPS directions of the volume's i, j, k axes as columns. The
    assignment is the permutation with the largest total alignment, so that for any orientation
    (even past 45 degrees) every patient plane gets its own volume axis: the slice views and the
    edits made in them use this one rule.
    """
    d = np.asarray(direction, dtype=float)
    best = max(itertools.permutations(range(3)), key=lambda p: sum(abs(d[a, p[a]]) for a in range(3)))
    return [(best[a], float(np.sign(d[a, best[a]]) or 1.0)) for a in range(3)]
