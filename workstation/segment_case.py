"""Segmentation on a case: what ``twin segment|labels|mesh|stats`` and the app's segment editor call.

A case keeps one label map per volume (id ``<volume id>-labels``): the saved source of truth.
Surfaces are derived from it, carry the parameters that rebuild them, and are dropped when it
changes (:meth:`Case.replace_label_map`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from segmentation.islands import keep_at_points
from segmentation.labels import color_for, empty_label_map, remove_segment, set_segment
from segmentation.statistics import SegmentStatistics, segment_statistics
from segmentation.threshold import CT_PRESETS, preset_mask
from workstation.errors import InputError
from workstation.model.case import Case
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.mesh import SurfaceMesh
from workstation.model.volume import Volume
from workstation.progress import ProgressCallback


def label_map_id(volume: Volume) -> str:
    return f"{volume.id}-labels"


def case_volume(case: Case, volume_id: str | None = None) -> Volume:
    try:
        return case.volume(volume_id)
    except KeyError as exc:
        raise InputError(f"--volume: {exc.args[0]}") from None


def case_label_map(case: Case, volume: Volume) -> LabelMap:
    """The case's label map of ``volume`` (an empty one when there is none yet)."""
    existing = case.label_maps.get(label_map_id(volume))
    return existing if existing is not None else replace(empty_label_map(volume), id=label_map_id(volume))


def segmented_label_map(case: Case, volume_id: str | None = None) -> LabelMap:
    """The case's label map of the volume, refused (:class:`InputError`) when it holds no segment yet."""
    volume = case_volume(case, volume_id)
    label_map = case.label_maps.get(label_map_id(volume))
    if label_map is None or not label_map.segments:
        raise InputError(f"case has no segments for volume '{volume.id}': run 'twin segment' first")
    return label_map


def store_label_map(case: Case, label_map: LabelMap, *, description: str) -> LabelMap:
    """Put ``label_map`` in the case (replacing the previous one and its derived surfaces) and record
    the change, named ``description``, in the case's journal (:mod:`workstation.label_journal`)."""
    from workstation.label_journal import record_change

    old = case.label_maps.get(label_map.id)
    stored = case.replace_label_map(label_map) if old is not None else case.add_label_map(label_map)
    record_change(case, old, stored, description)
    return stored


def _point_kji(volume: Volume, point_lps: ArrayLike) -> tuple[int, int, int]:
    i, j, k = np.rint(volume.lps_to_ijk_points(np.asarray(point_lps, dtype=float))).astype(int)
    if not (0 <= i < volume.size_ijk[0] and 0 <= j < volume.size_ijk[1] and 0 <= k < volume.size_ijk[2]):
        text = ",".join(f"{float(c):g}" for c in np.asarray(point_lps, dtype=float).ravel())
        raise InputError(f"--point {text}: outside the volume (LPS mm)")
    return int(k), int(j), int(i)


def segment_with_preset(case: Case, preset: str, *, name: str | None = None, points_lps: ArrayLike | None = None,
                        volume_id: str | None = None, overwrite: bool = True) -> tuple[LabelMap, str]:
    """Add a preset's segment (optionally only the pieces under ``points_lps``) to the case.

    Returns the new label map and the segment's name.
    """
    volume = case_volume(case, volume_id)
    if preset not in CT_PRESETS:
        raise InputError(f"--preset {preset}: unknown; presets: {', '.join(CT_PRESETS)}")
    try:
        mask = preset_mask(volume, preset)
    except ValueError as exc:
        raise InputError(f"--preset {preset}: {exc}") from None
    if points_lps is not None:
        points = [_point_kji(volume, p) for p in np.atleast_2d(np.asarray(points_lps, dtype=float))]
        try:
            mask = keep_at_points(mask, points, connectivity=6)
        except ValueError as exc:
            raise InputError(f"--point: {exc} of preset {preset}") from None
    if not mask.any():
        raise InputError(f"--preset {preset}: found nothing in volume '{volume.id}'")
    name = name or preset
    if not name.isprintable() or not name.strip():
        raise InputError(f"--name {name!r}: a segment name must be one line of printable text")
    label_map = set_segment(case_label_map(case, volume), mask, name=name, color_rgb=CT_PRESETS[preset].color_rgb,
                            overwrite=overwrite)
    label_map = replace(label_map, provenance={**label_map.provenance, name: {
        "tool": "preset", "preset": preset, "points_lps": None if points_lps is None else
        np.atleast_2d(np.asarray(points_lps, dtype=float)).tolist()}})
    where = "" if points_lps is None else " (pieces under points)"
    return store_label_map(case, label_map, description=f"preset {preset} -> {name}{where}"), name


def _sidecar_names(path: Path) -> dict[int, dict[str, Any]]:
    """Names (and colours) of a seeds file's values from a JSON sidecar beside it (``<file>.json`` or
    ``<stem>.json``; forms in :mod:`workstation.io.segment_sidecar`); a malformed one is an InputError."""
    from workstation.io.segment_sidecar import read_segment_sidecar

    for candidate in (Path(str(path) + ".json"), path.with_name(path.name.split(".")[0] + ".json")):
        if candidate.is_file():
            return {s.value: {"name": s.name, "color_rgb": s.color_rgb} for s in read_segment_sidecar(candidate)}
    return {}


def read_labels_onto(volume: Volume, path: str | os.PathLike[str]) -> LabelMap:
    """A label-map file (.nrrd, .nii.gz, DICOM SEG .dcm) on ``volume``'s grid by physical position."""
    from workstation.io.label_files import read_label_map_file

    return read_label_map_file(path, reference=volume)


def segment_from_seeds(case: Case, seeds_path: str | os.PathLike[str], *, background: int,
                       volume_id: str | None = None, progress: ProgressCallback | None = None) -> LabelMap:
    """Grow every seed label of a seeds file over the volume; background voxels become 0.

    Segments are named from the seeds file's own segment names, a JSON sidecar
    (``{"5": "liver", ...}``), or ``label_<value>``.
    """
    volume = case_volume(case, volume_id)
    seeds_path = Path(seeds_path)
    seeds = read_labels_onto(volume, seeds_path)
    names = _sidecar_names(seeds_path)
    for segment in seeds.segments:
        names.setdefault(segment.value, {"name": segment.name, "color_rgb": segment.color_rgb})
    try:
        _seed_values(np.asarray(seeds.array), background)
    except InputError as exc:
        raise InputError(f"{seeds_path}: {exc}") from None
    # Errors from here on concern the volume (e.g. NaN voxels), not the seeds file.
    return grow_segments(case, np.asarray(seeds.array), background=background, names=names,
                         volume_id=volume_id, progress=progress, source=seeds_path.name)


def _seed_values(seeds: np.ndarray, background: int) -> list[int]:
    """The seed values (sorted, 0 left out), refused unless they hold ``background`` and one structure."""
    seeds = np.asarray(seeds)
    if seeds.dtype.kind not in "ui" or (seeds.size and int(seeds.min()) < 0):
        raise InputError("seeds must be non-negative integer labels")
    values = [int(v) for v in np.flatnonzero(np.bincount(seeds.ravel())) if v != 0]
    if not values:
        raise InputError("no seeds on the volume's grid: every voxel is 0 (unknown)")
    if background not in values:
        raise InputError(f"--background {background}: no seed has that value (values: {values})")
    if len(values) < 2:
        raise InputError(f"seeds need at least one structure besides the background {background}")
    return values


def grow_segments(case: Case, seeds: np.ndarray, *, background: int, names: dict[int, dict[str, Any]] | None = None,
                  volume_id: str | None = None, progress: ProgressCallback | None = None,
                  source: str = "painted strokes", session: Any = None) -> LabelMap:
    """Grow-from-seeds on the case's volume with seeds (K, J, I) on its grid; 0 = unknown.

    Every seed value other than ``background`` becomes a segment with exactly that label value
    (``names[value]`` gives its name and colour; else the name of the case's segment that already
    has that value, else ``label_<value>``), written over the case's label map. A case segment
    that holds the value under another name moves to a free value. ``session``: a
    :class:`segmentation.grow_from_seeds.SeedGrower` on the same volume kept between calls, so
    that strokes added since the last call update its result instead of recomputing it.
    """
    from segmentation.grow_from_seeds import grow_from_seeds

    volume = case_volume(case, volume_id)
    if session is not None and (session.volume.shape != volume.shape
                                or not np.array_equal(session.volume.ijk_to_lps, volume.ijk_to_lps)):
        raise InputError(f"grow from seeds: the session was started on another volume than {volume.id!r}")
    names = names or {}
    values = _seed_values(seeds, background)
    try:
        if session is None:
            grown = grow_from_seeds(volume, seeds, background_value=background, progress=progress)
        else:
            grown = session.update(seeds, progress=progress)
            grown[grown == background] = 0
    except ValueError as exc:
        raise InputError(f"volume '{volume.id}': {exc}") from None
    label_map = case_label_map(case, volume)
    structures = [v for v in values if v != background]
    for n, value in enumerate(structures):
        entry = names.get(value, {})
        holder = next((s for s in label_map.segments if s.value == value), None)
        # Unnamed seed values keep the name (and colour) of the case's segment with that value.
        name = _one_line(entry.get("name") or "") or (holder.name if holder is not None else f"label_{value}")
        color = (tuple(entry["color_rgb"]) if entry.get("color_rgb") else
                 holder.color_rgb if holder is not None and holder.name == name else color_for(name, n))
        label_map = _set_with_value(label_map, grown == value, name=name, color=color, value=value,
                                    reserved=set(structures))
    label_map = replace(label_map, provenance={**label_map.provenance, "grow_from_seeds": {
        "seeds": source, "background": background, "values": values}})
    return store_label_map(case, label_map, description=f"grow from seeds ({source})")


def _one_line(name: Any) -> str:
    """A segment name from a file as one line of printable text."""
    return "".join(c if c.isprintable() else " " for c in " ".join(str(name).split()))


def _set_with_value(label_map: LabelMap, mask: np.ndarray, *, name: str, color: Any, value: int,
                    reserved: set[int]) -> LabelMap:
    """Segment ``name`` becomes ``mask`` with exactly label ``value`` (a seed value keeps its value).

    A segment of that name under another value is replaced (``set_segment`` would drop its old
    voxels anyway); another segment holding ``value`` moves, voxels and all, to a free value
    outside ``reserved``.
    """
    same_name = next((s for s in label_map.segments if s.name == name), None)
    if same_name is not None and same_name.value != value:
        label_map = remove_segment(label_map, name)
    holder = next((s for s in label_map.segments if s.value == value and s.name != name), None)
    if holder is not None:
        used = {s.value for s in label_map.segments} | reserved
        free = next(v for v in range(1, 65536) if v not in used)
        array = label_map.array.astype(np.uint16 if free > 255 else label_map.array.dtype, copy=True)
        array[array == value] = free
        label_map = replace(label_map, array=array, segments=tuple(sorted(
            (replace(s, value=free) if s is holder else s for s in label_map.segments), key=lambda s: s.value)))
    return set_segment(label_map, mask, name=name, color_rgb=tuple(color), value=value)


def _set_keeping_value(label_map: LabelMap, mask: np.ndarray, *, name: str, color: Any, value: int) -> LabelMap:
    taken = {s.value: s.name for s in label_map.segments}
    keep = value if (value not in taken or taken[value] == name) else None
    return set_segment(label_map, mask, name=name, color_rgb=tuple(color), value=keep)


def import_labels(case: Case, path: str | os.PathLike[str], *, volume_id: str | None = None) -> LabelMap:
    """Merge a label-map file's segments into the case's label map (same values where free)."""
    volume = case_volume(case, volume_id)
    imported = read_labels_onto(volume, path)
    label_map = case_label_map(case, volume)
    described = {s.value for s in imported.segments}
    # Values the file's names do not describe are imported too (as label_<value>), never dropped.
    segments = list(imported.segments) + [Segment(int(v), f"label_{int(v)}", color_for("", n))
                                          for n, v in enumerate(imported.present_values()) if int(v) not in described]
    for segment in segments:
        label_map = _set_keeping_value(label_map, imported.array == segment.value, name=_one_line(segment.name),
                                       color=segment.color_rgb, value=segment.value)
    return store_label_map(case, label_map, description=f"import {Path(path).name}")


def export_labels(case: Case, path: str | os.PathLike[str], *, volume_id: str | None = None) -> LabelMap:
    """Write the case's label map (.nrrd, .nii.gz, or DICOM SEG .dcm referencing the source series)."""
    from workstation.io.label_files import write_label_map

    volume = case_volume(case, volume_id)
    label_map = segmented_label_map(case, volume_id)
    write_label_map(label_map, path, source_headers=case.source_headers.get(volume.id), reference_volume=volume)
    return label_map


def build_surfaces(case: Case, *, segments: list[str] | None = None, volume_id: str | None = None,
                   progress: ProgressCallback | None = None) -> list[SurfaceMesh]:
    """Surfaces of the case's segments (all, or ``segments``) with default settings, stored in the case.

    A named segment that is missing or empty is an :class:`InputError`; asked for all segments,
    empty ones (e.g. overwritten by a later preset) are skipped, and only a label map whose every
    segment is empty is refused.
    """
    from segmentation.surface import label_to_surface

    label_map = segmented_label_map(case, volume_id)
    present = {int(v) for v in np.flatnonzero(np.bincount(np.asarray(label_map.array).ravel()))} - {0}
    if segments:
        names = list(dict.fromkeys(segments))  # a segment named twice is built once
    else:
        names = [s.name for s in label_map.segments if s.value in present]
        if not names:
            raise InputError(f"every segment of volume '{case_volume(case, volume_id).id}' is empty: nothing to mesh")
    meshes = []
    for name in names:
        try:
            segment = label_map.segment(name)
        except KeyError as exc:
            raise InputError(f"--segment: {exc.args[0]}") from None
        if segment.value not in present:
            raise InputError(f"--segment {name}: the segment is empty")
        mesh = label_to_surface(label_map, name, progress=progress)
        mesh = replace(mesh, id=f"{label_map.id}-{segment.name}", name=segment.name,
                       provenance={**mesh.provenance, "label_map_id": label_map.id})
        if mesh.id in case.meshes:
            case.remove_mesh(mesh.id)
        meshes.append(case.add_mesh(mesh))
    return meshes


def segment_surface(case: Case, name: str, *, volume_id: str | None = None,
                    progress: ProgressCallback | None = None) -> SurfaceMesh:
    """The case's surface of segment ``name`` derived from its current label map; built and stored when
    missing (:func:`build_surfaces` names a missing or empty segment)."""
    label_map = label_map_id(case_volume(case, volume_id))
    for mesh in case.meshes.values():
        if mesh.provenance.get("label_map_id") == label_map and name in (mesh.segment, mesh.name):
            return mesh
    return build_surfaces(case, segments=[name], volume_id=volume_id, progress=progress)[0]


def statistics(case: Case, *, volume_id: str | None = None) -> list[SegmentStatistics]:
    volume = case_volume(case, volume_id)
    label_map = case.label_maps.get(label_map_id(volume))
    if label_map is None:
        return []
    return segment_statistics(label_map, volume)
