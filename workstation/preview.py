"""Axial, coronal and sagittal previews resampled in patient space, with orientation letters.

The planes are aligned with the patient axes whatever the volume's orientation (oblique and
tilted scans included), shown in the radiological convention: the patient's right on the
screen's left.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import map_coordinates

from workstation.io.atomic import atomic_path
from workstation.model.volume import Volume

# For each plane: LPS axis along screen columns, along screen rows, the fixed axis, whether
# rows run against the axis (superior at the top), and letters (left, right, top, bottom).
_PLANES = {
    "axial": (0, 1, 2, False, ("R", "L", "A", "P")),
    "coronal": (0, 2, 1, True, ("R", "L", "S", "I")),
    "sagittal": (1, 2, 0, True, ("A", "P", "S", "I")),
}


@dataclass(frozen=True)
class PlaneImage:
    """A resampled plane: ``pixels`` (rows, cols), pixel size in mm and the edge letters."""

    plane: str
    pixels: NDArray[np.float32]
    pixel_mm: float
    letters: tuple[str, str, str, str]
    position_mm: float


def resample_plane(volume: Volume, plane: str, *, center_lps: NDArray[np.float64] | None = None,
                   pixel_mm: float | None = None, max_pixels: int = 1024) -> PlaneImage:
    """Resample ``volume`` on a patient-aligned plane through ``center_lps`` (default: the centre).

    Pixels outside the volume are NaN.
    """
    if plane not in _PLANES:
        raise ValueError(f"plane must be one of {sorted(_PLANES)}, got {plane!r}")
    col_axis, row_axis, fixed_axis, flip_rows, letters = _PLANES[plane]
    corners = volume.corners_lps()
    low, high = corners.min(axis=0), corners.max(axis=0)
    center = (low + high) / 2 if center_lps is None else np.asarray(center_lps, dtype=float)
    extent = high - low
    if pixel_mm is None:
        pixel_mm = float(min(volume.spacing_mm))
    pixel_mm = max(pixel_mm, float(max(extent[col_axis], extent[row_axis])) / max_pixels)
    n_cols = int(extent[col_axis] / pixel_mm) + 1
    n_rows = int(extent[row_axis] / pixel_mm) + 1
    cols = low[col_axis] + pixel_mm * np.arange(n_cols)
    rows = low[row_axis] + pixel_mm * np.arange(n_rows)
    if flip_rows:
        rows = rows[::-1]
    points = np.empty((n_rows, n_cols, 3))
    points[..., col_axis] = cols[np.newaxis, :]
    points[..., row_axis] = rows[:, np.newaxis]
    points[..., fixed_axis] = center[fixed_axis]
    ijk = volume.lps_to_ijk_points(points.reshape(-1, 3))
    size = np.array(volume.size_ijk)
    inside = np.all((ijk >= -0.5) & (ijk <= size - 0.5), axis=1)
    values = map_coordinates(volume.array.astype(np.float32, copy=False), ijk[:, ::-1].T, order=1, mode="nearest")
    values = np.where(inside, values, np.nan).astype(np.float32).reshape(n_rows, n_cols)
    return PlaneImage(plane=plane, pixels=values, pixel_mm=pixel_mm, letters=letters,
                      position_mm=float(center[fixed_axis]))


def default_window(volume: Volume) -> tuple[float, float]:
    """(level, width): soft tissue for CT, the 1-99 percentile range otherwise."""
    if volume.modality == "CT":
        return 40.0, 400.0
    lo, hi = np.percentile(volume.array[:: max(1, volume.shape[0] // 16)], [1, 99])
    return float(lo + hi) / 2, float(max(hi - lo, 1e-6))


def write_previews(volume: Volume, out_dir: str | os.PathLike[str], *, prefix: str = "preview",
                   window: tuple[float, float] | None = None) -> list[Path]:
    """Write ``<prefix>-axial.png``, ``-coronal.png`` and ``-sagittal.png``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    level, width = window or default_window(volume)
    out_dir = Path(out_dir)
    written = []
    axis_name = {"axial": "S", "coronal": "P", "sagittal": "L"}
    for plane in _PLANES:
        image = resample_plane(volume, plane)
        rows, cols = image.pixels.shape
        scale = max(1.0, 640.0 / cols)  # screen pixels per image pixel
        margin = 34.0 / scale  # image pixels of black margin holding the letters and labels
        fig = plt.figure(figsize=((cols + 2 * margin) * scale / 100, (rows + 2 * margin) * scale / 100), dpi=100,
                         facecolor="black")
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(np.nan_to_num(image.pixels, nan=level - width), cmap="gray", vmin=level - width / 2,
                  vmax=level + width / 2, interpolation="nearest", extent=(0, cols, rows, 0))
        ax.set_xlim(-margin, cols + margin)
        ax.set_ylim(rows + margin, -margin)
        ax.set_axis_off()
        style = {"color": "yellow", "fontsize": 14, "fontweight": "bold", "ha": "center", "va": "center"}
        left, right, top, bottom = image.letters
        ax.text(-margin / 2, rows / 2, left, **style)
        ax.text(cols + margin / 2, rows / 2, right, **style)
        ax.text(cols / 2, -margin / 2, top, **style)
        ax.text(cols / 2, rows + margin / 2, bottom, **style)
        bar_px = 50.0 / image.pixel_mm
        ax.plot([0, bar_px], [rows + margin / 2] * 2, color="white", lw=3)
        ax.text(bar_px + 4 / scale, rows + margin / 2, "50 mm", color="white", fontsize=9, va="center")
        ax.text(0, -margin / 2, f"{plane}  {axis_name[plane]} = {image.position_mm:.1f} mm (LPS)", color="white",
                fontsize=9, va="center")
        ax.text(cols, -margin / 2, f"W {width:.0f} L {level:.0f}", color="white", fontsize=9, va="center",
                ha="right")
        target = out_dir / f"{prefix}-{plane}.png"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", facecolor="black")
        plt.close(fig)
        written.append(target)
    return written
