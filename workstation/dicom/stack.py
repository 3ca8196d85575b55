"""Geometry of a stack of parallel DICOM planes: order, spacing, tilt, gaps, several volumes.

Slice order and spacing come from ImagePositionPatient projected on the slice normal,
never from SliceThickness or SpacingBetweenSlices.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from workstation.dicom.frames import SPLIT_ATTRIBUTES, Frame, FrameError

POSITION_TOLERANCE_MM = 0.01  # planes closer than this along the normal share a position
SHEAR_TOLERANCE_PX = 0.02  # in-plane drift of slice origins beyond this is a tilt/shear
EVEN_TOLERANCE = 0.02  # deviation from a regular grid, as a fraction of the step, beyond which it is uneven


@dataclass
class StackGeometry:
    """A sorted stack of planes and the regular grid it is loaded onto.

    Attributes
    ----------
    frames : the planes sorted along ``normal``.
    row_dir, col_dir, normal : (3,) unit vectors in LPS: +column index, +row index, slice normal.
    pixel_spacing_mm : (between rows, between columns) as in DICOM PixelSpacing.
    positions_mm : (n,) plane positions along ``normal``.
    offsets_mm : (n, 2) in-plane origin of each plane along (row_dir, col_dir), relative to the first.
    slice_spacing_mm : spacing of the regular output grid along ``normal``.
    n_output_slices : number of slices of that grid.
    tilt_deg : angle between the stacking direction and the normal (gantry tilt).
    uneven, missing : whether spacing varies; gaps as (after_mm, before_mm, n_missing).
    """

    frames: list[Frame]
    row_dir: NDArray[np.float64]
    col_dir: NDArray[np.float64]
    normal: NDArray[np.float64]
    pixel_spacing_mm: tuple[float, float]
    positions_mm: NDArray[np.float64]
    offsets_mm: NDArray[np.float64]
    slice_spacing_mm: float
    n_output_slices: int
    tilt_deg: float = 0.0
    uneven: bool = False
    missing: list[tuple[float, float, int]] = field(default_factory=list)

    @property
    def sheared(self) -> bool:
        limit = SHEAR_TOLERANCE_PX * min(self.pixel_spacing_mm)
        return bool(np.max(np.abs(self.offsets_mm)) > limit)

    @property
    def needs_resampling(self) -> bool:
        return self.sheared or self.uneven or bool(self.missing)

    def notes(self) -> list[str]:
        """Human-readable findings that change how the stack is loaded."""
        notes = []
        if self.sheared:
            notes.append(f"gantry tilt {self.tilt_deg:.2f} deg: resampled onto an orthogonal grid covering all "
                         "source pixels")
        for after, before, count in self.missing:
            notes.append(f"{count} missing slice(s) between {after:.2f} and {before:.2f} mm along the normal: "
                         "the gap is interpolated")
        if self.uneven:
            steps = np.diff(self.positions_mm)
            notes.append(f"uneven slice spacing ({steps.min():.3f}..{steps.max():.3f} mm): resampled to a "
                         f"regular {self.slice_spacing_mm:.3f} mm grid")
        return notes


def _cluster_positions(distances: NDArray[np.float64]) -> list[NDArray[np.int64]]:
    order = np.argsort(distances, kind="stable")
    clusters: list[list[int]] = [[int(order[0])]]
    for a, b in itertools.pairwise(order):
        if distances[b] - distances[a] > POSITION_TOLERANCE_MM:
            clusters.append([])
        clusters[-1].append(int(b))
    return [np.array(c) for c in clusters]


def split_volumes(frames: list[Frame]) -> tuple[list[list[Frame]], str | None]:
    """Split frames of one geometry group into volumes with one plane per position.

    Returns the volumes and a note when there are several. Raises :class:`FrameError` when
    positions repeat and no attribute tells the volumes apart (never stacks them into one).
    """
    normal = frames[0].normal
    distances = np.array([float(f.position_lps @ normal) for f in frames])  # type: ignore[operator]
    clusters = _cluster_positions(distances)
    if all(len(c) == 1 for c in clusters):
        return [frames], None
    cluster_of = np.empty(len(frames), dtype=int)
    for n, members in enumerate(clusters):
        cluster_of[members] = n
    for attribute in (*SPLIT_ATTRIBUTES, "SourceFile"):
        if attribute == "SourceFile":
            values = [str(f.path) for f in frames]
        else:
            values = [f.split_values.get(attribute) for f in frames]
            if any(v is None for v in values):
                continue
        groups: dict[object, list[int]] = {}
        for index, value in enumerate(values):
            groups.setdefault(value, []).append(index)
        if len(groups) < 2:
            continue
        if all(len(set(cluster_of[g])) == len(g) >= 2 for g in groups.values()):
            ordered = [groups[key] for key in sorted(groups, key=lambda v: (str(type(v)), v))]
            volumes = [[frames[i] for i in g] for g in ordered]
            label = "source file" if attribute == "SourceFile" else attribute
            return volumes, f"{len(volumes)} volumes at the same positions, told apart by {label}"
    counts = sorted({len(c) for c in clusters})
    raise FrameError(
        f"positions repeat ({len(clusters)} positions holding {counts} planes each) and no attribute "
        "(time point, echo, acquisition, ...) tells the volumes apart: refusing to stack them into one volume")


def analyse_stack(frames: list[Frame]) -> StackGeometry:
    """Order planes along their normal and find spacing, tilt and gaps (frames: one per position)."""
    if len(frames) < 2:
        raise FrameError("a single slice: a volume needs at least 2 parallel slices")
    first = frames[0]
    assert first.row_dir is not None and first.col_dir is not None and first.pixel_spacing_mm is not None
    normal = first.normal
    distances = np.array([float(f.position_lps @ normal) for f in frames])  # type: ignore[operator]
    order = np.argsort(distances, kind="stable")
    frames = [frames[i] for i in order]
    distances = distances[order]
    steps = np.diff(distances)
    if np.any(steps <= POSITION_TOLERANCE_MM):
        raise FrameError("two planes share a position")
    origins = np.array([f.position_lps for f in frames], dtype=float)
    rel = origins - origins[0]
    offsets = np.stack([rel @ first.row_dir, rel @ first.col_dir], axis=1)

    total = distances[-1] - distances[0]
    reference = float(np.median(steps))
    ratio = steps / reference
    gap = (np.round(ratio) >= 2) & (np.abs(ratio - np.round(ratio)) < 0.15)
    missing = [(float(distances[i]), float(distances[i + 1]), int(round(ratio[i])) - 1) for i in np.flatnonzero(gap)]
    regular_steps = steps[~gap]
    uneven = bool(regular_steps.size and (regular_steps.max() - regular_steps.min()) > EVEN_TOLERANCE * reference)
    if uneven:
        spacing = float(max(regular_steps.min(), 0.25 * reference))
    elif missing:
        spacing = float(np.mean(regular_steps)) if regular_steps.size else reference
    else:
        spacing = total / (len(frames) - 1)
    n_out = int(round(total / spacing)) + 1
    spacing = total / (n_out - 1)
    drift = offsets[-1] / total if total > 0 else np.zeros(2)
    tilt = float(np.degrees(np.arctan(np.linalg.norm(drift))))
    return StackGeometry(frames=frames, row_dir=first.row_dir, col_dir=first.col_dir, normal=normal,
                         pixel_spacing_mm=first.pixel_spacing_mm, positions_mm=distances, offsets_mm=offsets,
                         slice_spacing_mm=spacing, n_output_slices=n_out, tilt_deg=tilt, uneven=uneven,
                         missing=missing)
