"""Label-map operations: segments in and out, logical operations, smoothing.

One label per voxel. Writing a segment replaces whatever the voxels held before ("last write
wins") unless ``overwrite=False``, in which case only unlabelled voxels (0) are taken.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage as ndi

from workstation.model.labelmap import LabelMap, Segment
from workstation.model.volume import Volume

# Distinct, print-friendly colours for segments that come without one.
PALETTE = (
    (0.95, 0.92, 0.84), (0.86, 0.45, 0.36), (0.85, 0.2, 0.2), (0.35, 0.55, 0.95), (0.95, 0.8, 0.3),
    (0.45, 0.75, 0.45), (0.75, 0.5, 0.85), (0.4, 0.8, 0.85), (0.9, 0.6, 0.2), (0.6, 0.6, 0.6),
)


# Conventional colours of common structures (after 3D Slicer's generic anatomy colours), by lower-case name.
ANATOMY_COLORS: dict[str, tuple[float, float, float]] = {
    "bone": (0.945, 0.839, 0.569), "vertebra": (0.945, 0.839, 0.569), "rib": (0.945, 0.839, 0.569),
    "liver": (0.867, 0.51, 0.396), "spleen": (0.616, 0.424, 0.635), "kidney": (0.725, 0.4, 0.325),
    "aorta": (0.878, 0.31, 0.294), "artery": (0.878, 0.31, 0.294), "vena": (0.0, 0.592, 0.808),
    "vein": (0.0, 0.592, 0.808), "spinal_cord": (0.957, 0.839, 0.318), "nerve": (0.957, 0.839, 0.318),
    "tumor": (0.565, 0.933, 0.565), "tumour": (0.565, 0.933, 0.565), "lung": (0.773, 0.933, 0.976),
    "stomach": (0.847, 0.518, 0.404), "pancreas": (0.976, 0.706, 0.435), "gallbladder": (0.545, 0.592, 0.306),
    "heart": (0.808, 0.294, 0.357), "muscle": (0.753, 0.408, 0.345), "fat": (0.902, 0.863, 0.275),
    "skin": (0.694, 0.478, 0.396), "body": (0.694, 0.478, 0.396), "disc": (0.435, 0.722, 0.824),
}


def color_for(name: str, index: int = 0) -> tuple[float, float, float]:
    """The conventional colour of a structure named ``name`` (first matching word), else a palette colour."""
    lowered = name.lower()
    for key, color in ANATOMY_COLORS.items():
        if key in lowered:
            return color
    return PALETTE[index % len(PALETTE)]


def empty_label_map(volume: Volume, *, name: str = "segmentation") -> LabelMap:
    """An empty label map on ``volume``'s grid."""
    return LabelMap(array=np.zeros(volume.shape, dtype=np.uint8), ijk_to_lps=volume.ijk_to_lps, name=name,
                    source_volume_id=volume.id)


def next_value(label_map: LabelMap) -> int:
    used = {s.value for s in label_map.segments}
    return next(v for v in range(1, 65536) if v not in used)


def set_segment(label_map: LabelMap, mask: ArrayLike, *, name: str, color_rgb: tuple[float, float, float] | None = None,
                value: int | None = None, overwrite: bool = True) -> LabelMap:
    """A new label map where ``mask`` (K, J, I) is the segment ``name`` (created when new).

    An existing segment of that name keeps its value and loses its old voxels outside ``mask``.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != label_map.array.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the label map's {label_map.array.shape}")
    existing = next((s for s in label_map.segments if s.name == name), None)
    if existing is not None:
        segment = existing if color_rgb is None else replace(existing, color_rgb=color_rgb)
    else:
        value = next_value(label_map) if value is None else int(value)
        if any(s.value == value for s in label_map.segments):
            raise ValueError(f"label value {value} is already segment {label_map.segment(value).name!r}")
        segment = Segment(value, name, color_rgb or color_for(name, value - 1))
    dtype = np.uint8 if max(segment.value, int(label_map.array.max(initial=0))) < 256 else np.uint16
    array = label_map.array.astype(dtype, copy=True)
    array[array == segment.value] = 0
    target = mask if overwrite else mask & (array == 0)
    array[target] = segment.value
    segments = (*(s for s in label_map.segments if s.name != name), segment)
    return replace(label_map, array=array, segments=tuple(sorted(segments, key=lambda s: s.value)))


def remove_segment(label_map: LabelMap, name: str) -> LabelMap:
    """A new label map without segment ``name`` (its voxels become 0)."""
    segment = label_map.segment(name)
    array = np.where(label_map.array == segment.value, 0, label_map.array).astype(label_map.array.dtype)
    return replace(label_map, array=array, segments=tuple(s for s in label_map.segments if s.name != name))


def union(*masks: ArrayLike) -> NDArray[np.bool_]:
    return np.logical_or.reduce([np.asarray(m, dtype=bool) for m in masks])


def intersect(*masks: ArrayLike) -> NDArray[np.bool_]:
    return np.logical_and.reduce([np.asarray(m, dtype=bool) for m in masks])


def subtract(mask: ArrayLike, *others: ArrayLike) -> NDArray[np.bool_]:
    return np.asarray(mask, dtype=bool) & ~union(*others) if others else np.asarray(mask, dtype=bool).copy()


def smooth_labels(label_map: LabelMap, *, radius_mm: float = 1.0) -> LabelMap:
    """Majority (median-like) smoothing of every segment, keeping one label per voxel.

    Each voxel takes the label most frequent in a ball of ``radius_mm``; ties keep the current label.
    """
    from segmentation.structuring import ball

    footprint = ball(radius_mm, label_map.spacing_mm)
    values = np.unique(label_map.array)
    best = np.zeros(label_map.array.shape, dtype=np.float32)
    out = label_map.array.copy()
    weights = footprint.astype(np.float32) / footprint.sum()
    for value in values:
        share = ndi.convolve((label_map.array == value).astype(np.float32), weights, mode="nearest")
        share += (label_map.array == value) * 1e-3  # ties keep the current label
        better = share > best
        out[better] = value
        best = np.maximum(best, share)
    return replace(label_map, array=out)
