"""Per-segment statistics: volume, surface area, intensity (HU for CT)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from segmentation.structuring import kji_spacing, voxel_volume_mm3
from workstation.model.labelmap import LabelMap
from workstation.model.volume import Volume


@dataclass(frozen=True)
class SegmentStatistics:
    """Measurements of one segment; intensities in the volume's units (HU for CT)."""

    name: str
    value: int
    voxels: int
    volume_ml: float
    surface_area_mm2: float
    mean: float | None
    std: float | None
    min: float | None
    max: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def surface_area_mm2(mask: NDArray[np.bool_], spacing_mm: NDArray[np.float64]) -> float:
    """Area of the surface of ``mask`` (K, J, I) in mm^2.

    Marching cubes at the 0.5 level of the mask blurred by one voxel: on the raw mask the
    staircase adds about 10% to the area of a sphere; blurred, about 1%.
    """
    from scipy.ndimage import gaussian_filter
    from skimage.measure import marching_cubes, mesh_surface_area

    if not mask.any():
        return 0.0
    index = np.nonzero(mask)
    box = tuple(slice(max(int(ix.min()) - 1, 0), int(ix.max()) + 2) for ix in index)
    crop = gaussian_filter(np.pad(mask[box], 3).astype(np.float32), sigma=1.0)
    vertices, faces, _, _ = marching_cubes(crop, level=0.5, spacing=tuple(kji_spacing(spacing_mm)))
    return float(mesh_surface_area(vertices, faces))


def segment_statistics(label_map: LabelMap, volume: Volume | None = None) -> list[SegmentStatistics]:
    """Statistics of every named segment; intensities only when ``volume`` (same grid) is given."""
    spacing = np.linalg.norm(label_map.ijk_to_lps[:3, :3], axis=0)
    if volume is not None and not volume.same_grid(label_map):
        raise ValueError("segment_statistics: the volume and the label map are on different grids")
    out = []
    for segment in label_map.segments:
        mask = label_map.array == segment.value
        count = int(mask.sum())
        values = volume.array[mask].astype(float) if (volume is not None and count) else None
        out.append(SegmentStatistics(
            name=segment.name, value=segment.value, voxels=count,
            volume_ml=count * voxel_volume_mm3(spacing) / 1000.0,
            surface_area_mm2=surface_area_mm2(mask, spacing),
            mean=None if values is None else float(values.mean()),
            std=None if values is None else float(values.std()),
            min=None if values is None else float(values.min()),
            max=None if values is None else float(values.max()),
        ))
    return out
