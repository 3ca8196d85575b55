"""The open case as the app sees it: the shown volume, the label map being edited, view settings.

Every edit calls the same core functions as the CLI (:mod:`workstation.segment_case`,
:mod:`segmentation`), stores the result in the case (which records it in the case's journal of
label-map changes, :mod:`workstation.label_journal`: undo and redo are saved with the case, so
they also reach edits made earlier or with ``twin edit``), and emits a Qt signal; widgets hold
no state of their own beyond what they draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from PySide6.QtCore import QObject, Signal

from segmentation.editing import in_slice, sphere_mask
from workstation.errors import InputError
from workstation.label_journal import Journal
from workstation.model.case import Case
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.volume import Volume

# The segmentation tools (scipy, numba) are imported where they are used, so that the window and
# the first case show before they load: see the start-up time in the desktop-app issue.

# Seed value that marks background strokes for grow-from-seeds (segments use their own value).
SEED_BACKGROUND = 65535

WINDOW_PRESETS: dict[str, tuple[float, float]] = {  # name: (level, width) in HU
    "Soft tissue": (40.0, 400.0),
    "Bone": (400.0, 1800.0),
    "Lung": (-600.0, 1500.0),
    "Liver": (60.0, 160.0),
    "Brain": (40.0, 80.0),
}


class Document(QObject):
    """The case, the displayed volume and its label map, the crosshair, window and edit history."""

    case_changed = Signal()
    crosshair_changed = Signal()
    window_changed = Signal()
    labels_changed = Signal()
    display_changed = Signal()
    meshes_changed = Signal()
    history_changed = Signal()
    seeds_changed = Signal()
    plan_changed = Signal()
    live_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.case: Case | None = None
        self.case_path: Path | None = None
        self.volume: Volume | None = None
        self.label_map: LabelMap | None = None
        self.crosshair_lps = np.zeros(3)
        self.level, self.width = 40.0, 400.0
        self.hidden: set[int] = set()
        self.opacity: dict[int, float] = {}
        self.preview_mask: NDArray[np.bool_] | None = None
        self.seeds: NDArray[np.uint16] | None = None
        self.seed_grower: Any = None  # the grow-from-seeds session of the shown volume: added strokes update it
        self.modified = False
        self._stroke: NDArray[Any] | None = None
        self._stroke_before: LabelMap | None = None
        self.pending_entry: NDArray[np.float64] | None = None  # a trajectory's entry, waiting for its target
        self.push_point: NDArray[np.float64] | None = None  # where the mechanics tool pushes (LPS mm)
        self.simulation: str | None = None  # name of the simulation record shown in 3D
        self.brush_2d = False  # paint and erase in the view's slice only (outlines for Fill between slices)
        self.trace_darker = False  # level trace: a structure darker than its surroundings
        self.views_follow_volume = False  # an oblique volume's views show its own voxel slices (see slicing.cut)
        self.live: Any = None  # the interactive (co-rotational) tissue being dragged, see MechanicsPanel

    # --- the case --------------------------------------------------------------------------
    def set_case(self, case: Case, path: Path | None = None, *, volume_id: str | None = None) -> None:
        """Show ``case`` (its first volume, or ``volume_id``), centring the crosshair and picking the default window."""
        from workstation import segment_case
        from workstation.preview import default_window

        self.case, self.case_path = case, path
        self.volume = case.volume(volume_id)
        self.label_map = segment_case.case_label_map(case, self.volume)
        self.hidden, self.opacity = set(), {}
        self.preview_mask, self.seeds, self._stroke, self.seed_grower = None, None, None, None
        corners = self.volume.corners_lps()
        self.crosshair_lps = (corners.min(0) + corners.max(0)) / 2
        self.level, self.width = default_window(self.volume)
        self.modified = False
        self.pending_entry, self.push_point, self.simulation, self.live = None, None, None, None
        self.case_changed.emit()
        self.history_changed.emit()
        self.plan_changed.emit()

    def set_volume(self, volume_id: str) -> None:
        """Show another volume of the case (its own label map and undo history)."""
        if self.case is None or (self.volume is not None and self.volume.id == volume_id):
            return
        modified = self.modified
        self.set_case(self.case, self.case_path, volume_id=volume_id)
        self.modified = modified

    @property
    def has_volume(self) -> bool:
        return self.volume is not None

    def safety(self, name: str) -> dict[str, Any] | None:
        """The meta of the last safety check of plan item ``name`` (``Record(kind="safety")``), if any."""
        if self.case is None:
            return None
        for record in self.case.records_of("safety"):
            if record.name == name:
                return record.meta
        return None

    def label_array(self) -> NDArray[Any] | None:
        """The labels to draw: the stroke in progress, else the label map's."""
        if self._stroke is not None:
            return self._stroke
        return None if self.label_map is None else self.label_map.array

    def segments(self) -> tuple[Segment, ...]:
        return () if self.label_map is None else self.label_map.segments

    # --- navigation and display -----------------------------------------------------------
    def set_crosshair(self, point_lps: ArrayLike) -> None:
        if self.volume is None:
            return
        corners = self.volume.corners_lps()
        point = np.clip(np.asarray(point_lps, dtype=float), corners.min(0), corners.max(0))
        if not np.allclose(point, self.crosshair_lps):
            self.crosshair_lps = point
            self.crosshair_changed.emit()

    def set_window(self, level: float, width: float) -> None:
        self.level, self.width = float(level), max(float(width), 1.0)
        self.window_changed.emit()

    def set_visible(self, value: int, visible: bool) -> None:
        (self.hidden.discard if visible else self.hidden.add)(value)
        self.display_changed.emit()

    def set_opacity(self, value: int, opacity: float) -> None:
        self.opacity[value] = float(np.clip(opacity, 0.0, 1.0))
        self.display_changed.emit()

    def overlay_colors(self) -> tuple[dict[int, tuple[float, float, float]], dict[int, float]]:
        """Colours and opacities of the visible segments, by label value."""
        colors = {s.value: s.color_rgb for s in self.segments() if s.value not in self.hidden}
        return colors, {v: self.opacity.get(v, 0.5) for v in colors}

    def set_trace_darker(self, darker: bool) -> None:
        """Level trace a structure darker than its surroundings (the preview follows)."""
        self.trace_darker = bool(darker)
        self.display_changed.emit()

    def set_views_follow_volume(self, follow: bool) -> None:
        """Show an oblique volume in its own voxel slices (2-D edits then fill exactly what a view
        shows) or resampled in the patient's planes."""
        self.views_follow_volume = bool(follow)
        self.display_changed.emit()

    def set_preview(self, mask: NDArray[np.bool_] | None) -> None:
        self.preview_mask = mask
        self.display_changed.emit()

    # --- edits (each one undoable) ---------------------------------------------------------
    @property
    def history(self) -> Journal:
        """The journal of the shown label map's changes (empty when no case is open)."""
        case = self.case if self.case is not None else Case()
        return Journal(case, self.label_map.id if self.label_map is not None else "")

    def _commit(self, new: LabelMap, label: str) -> None:
        from workstation import segment_case

        assert self.case is not None and self.label_map is not None
        self._show_labels(segment_case.store_label_map(self.case, new, description=label))

    def _show_labels(self, label_map: LabelMap) -> None:
        self.label_map = label_map
        self.modified = True
        self.labels_changed.emit()
        self.meshes_changed.emit()
        self.history_changed.emit()

    def add_segment(self, name: str, color_rgb: tuple[float, float, float] | None = None) -> Segment:
        """An empty segment ``name`` (unique) with a conventional colour."""
        from workstation import segment_edits

        if self.label_map is None:
            raise InputError("no volume is open")
        self._commit(segment_edits.add_segment(self.label_map, name, color_rgb=color_rgb), f"add segment {name}")
        return self.label_map.segment(name)  # type: ignore[union-attr]

    def remove_segment(self, name: str) -> None:
        from workstation import segment_edits

        assert self.label_map is not None
        self._commit(segment_edits.remove_segment(self.label_map, name), f"remove segment {name}")

    def recolor_segment(self, name: str, color_rgb: tuple[float, float, float]) -> None:
        from workstation import segment_edits

        assert self.label_map is not None
        self._commit(segment_edits.recolor_segment(self.label_map, name, color_rgb=color_rgb), f"recolour {name}")

    def _scratch(self) -> tuple[Case, Volume]:
        """A private case with the shown volume and label map, for work in a worker thread.

        Core functions store their results in the case they are given (and emit its events);
        running them on this copy keeps the real case untouched until :meth:`commit` on the GUI thread.
        """
        from workstation import segment_case

        assert self.case is not None and self.volume is not None and self.label_map is not None
        scratch = Case(name=self.case.name)
        volume = scratch.add_volume(self.volume)
        scratch.add_label_map(replace(self.label_map, id=segment_case.label_map_id(volume)))
        return scratch, volume

    def commit(self, new: LabelMap, label: str) -> None:
        """Make ``new`` (computed on a scratch case) the label map, undoable."""
        assert self.label_map is not None
        new = replace(new, id=self.label_map.id, name=self.label_map.name,
                      source_volume_id=self.label_map.source_volume_id)
        self._commit(new, label)

    def compute_preset(self, preset: str, name: str | None = None, *, points_lps: ArrayLike | None = None,
                       progress: Any = None) -> LabelMap:
        """The label map with a CT preset's segment (``segment_case.segment_with_preset``); worker-safe."""
        from workstation import segment_case

        scratch, volume = self._scratch()
        new, _ = segment_case.segment_with_preset(scratch, preset, name=name, points_lps=points_lps,
                                                  volume_id=volume.id)
        return new

    def apply_preset(self, preset: str, name: str | None = None, *, points_lps: ArrayLike | None = None) -> None:
        """:meth:`compute_preset` and :meth:`commit` in one go (GUI thread)."""
        self.commit(self.compute_preset(preset, name, points_lps=points_lps), f"preset {preset}")

    def compute_surfaces(self, names: list[str] | None = None, progress: Any = None) -> list[Any]:
        """Surfaces of the segments (``segment_case.build_surfaces``) on a scratch case; worker-safe."""
        from workstation import segment_case

        scratch, volume = self._scratch()
        return segment_case.build_surfaces(scratch, segments=names, volume_id=volume.id, progress=progress)

    def store_surfaces(self, meshes: list[Any]) -> None:
        """Put surfaces from :meth:`compute_surfaces` into the case (replacing older ones) and show them."""
        assert self.case is not None and self.label_map is not None
        for mesh in meshes:
            mesh = replace(mesh, provenance={**mesh.provenance, "label_map_id": self.label_map.id})
            if mesh.id in self.case.meshes:
                self.case.remove_mesh(mesh.id)
            self.case.add_mesh(mesh)
        self.modified = True
        self.meshes_changed.emit()

    def threshold_mask(self, lower: float, upper: float) -> NDArray[np.bool_]:
        from segmentation.threshold import threshold

        assert self.volume is not None
        try:
            return threshold(self.volume, lower=lower, upper=upper)
        except ValueError as exc:
            raise InputError(f"threshold: {exc}") from None

    def apply_threshold(self, name: str, lower: float, upper: float) -> None:
        """Segment ``name`` becomes the voxels with ``lower <= value <= upper``."""
        from workstation import segment_edits

        assert self.label_map is not None and self.volume is not None
        new = segment_edits.threshold_segment(self.label_map, self.volume, name, lower=lower, upper=upper)
        self._commit(new, f"threshold {name} {lower:g}..{upper:g}")
        self.set_preview(None)

    def apply_edit(self, description: str, edit: Callable[[LabelMap], LabelMap]) -> None:
        """The label map becomes ``edit(label_map)`` (a :mod:`workstation.segment_edits` call), undoable.

        ``description`` names the step in the undo history. Errors of ``edit`` (``InputError``)
        propagate and leave the label map and the history as they were.
        """
        if self.label_map is None:
            raise InputError("no volume is open")
        self._commit(edit(self.label_map), description)

    def _ball(self, center_lps: ArrayLike, radius_mm: float) -> tuple[tuple[slice, ...], NDArray[np.bool_]]:
        """The box around a brush ball and the ball's mask inside it (``segmentation.editing.sphere_mask``)."""
        assert self.volume is not None
        volume = self.volume
        center = np.asarray(center_lps, dtype=float)
        spacing = volume.spacing_mm
        ijk = volume.lps_to_ijk_points(center)
        reach = np.ceil(radius_mm / spacing) + 1
        low = np.clip(np.floor(ijk - reach).astype(int), 0, np.array(volume.size_ijk))
        high = np.clip(np.ceil(ijk + reach).astype(int) + 1, 0, np.array(volume.size_ijk))
        box = (slice(low[2], high[2]), slice(low[1], high[1]), slice(low[0], high[0]))
        shift = np.eye(4)
        shift[:3, 3] = low
        shape = tuple(int(h - lo) for h, lo in zip(high[::-1], low[::-1], strict=True))
        if min(shape) <= 0:
            return box, np.zeros((0, 0, 0), dtype=bool)
        return box, sphere_mask(shape, volume.ijk_to_lps @ shift, center, radius_mm)  # type: ignore[arg-type]

    def paint(self, center_lps: ArrayLike, radius_mm: float, segment: str, *, erase: bool = False,
              plane: str | None = None) -> None:
        """One brush dab of a stroke (call :meth:`end_stroke` when the mouse is released).

        The dab is a ball, or with ``plane`` its disc in the voxel slice through the centre (the 2-D
        brush of ``segment_edits.paint``).
        """
        if self.label_map is None:
            return
        value = self.label_map.segment(segment).value
        if self._stroke is None:
            self._stroke_before = self.label_map
            dtype = np.uint8 if max(value, int(self.label_map.array.max(initial=0))) < 256 else np.uint16
            self._stroke = self.label_map.array.astype(dtype, copy=True)
        box, ball = self._ball(center_lps, radius_mm)
        if ball.size and plane is not None:
            from workstation.segment_edits import slice_axis

            axis = slice_axis(self.label_map, plane)
            index = int(np.rint(self.volume.lps_to_ijk_points(np.asarray(center_lps, dtype=float)))[::-1][axis])
            ball = in_slice(ball, axis=axis, index=index - box[axis].start)
        if ball.size:
            region = self._stroke[box]
            if erase:
                region[ball & (region == value)] = 0
            else:
                region[ball] = value
        self.labels_changed.emit()

    def draw(self, points_lps: ArrayLike, segment: str, *, plane: str, erase: bool = False) -> None:
        """Fill (or erase) a closed outline drawn in a ``plane`` view (``segment_edits.draw``); one undoable edit."""
        from workstation import segment_edits

        if self.label_map is None:
            return
        self._commit(segment_edits.draw(self.label_map, segment, points_lps=points_lps, plane=plane, erase=erase),
                     f"draw {segment} ({plane}{', erase' if erase else ''})")

    def level_trace(self, point_lps: ArrayLike, segment: str, *, plane: str, darker: bool = False,
                    erase: bool = False) -> None:
        """Fill (or erase) the region enclosed by the iso-contour through a point (``segment_edits.level_trace``)."""
        from workstation import segment_edits

        if self.label_map is None or self.volume is None:
            return
        self._commit(segment_edits.level_trace(self.label_map, self.volume, segment, point_lps=point_lps, plane=plane,
                                               darker=darker, erase=erase),
                     f"level trace {segment} ({plane}{', darker' if darker else ''}{', erase' if erase else ''})")

    def scissors(self, points_lps: ArrayLike, segment: str, *, plane: str, keep_inside: bool = False,
                 normal_lps: ArrayLike | None = None) -> None:
        """Cut ``segment`` with an outline drawn in a ``plane`` view, swept along the view's normal
        (``normal_lps`` when the view shows an oblique volume's own slices; ``segment_edits.scissors``)."""
        from workstation import segment_edits

        if self.label_map is None:
            return
        self._commit(segment_edits.scissors(self.label_map, segment, points_lps=points_lps, plane=plane,
                                            keep_inside=keep_inside, normal_lps=normal_lps),
                     f"scissors {segment} ({plane}{', keep inside' if keep_inside else ''})")

    def end_stroke(self, label: str) -> None:
        if self._stroke is None or self._stroke_before is None:
            return
        stroke, before = self._stroke, self._stroke_before
        self._stroke, self._stroke_before = None, None
        self._commit(before.with_array(stroke), label)

    def paint_seed(self, center_lps: ArrayLike, radius_mm: float, value: int) -> None:
        """A grow-from-seeds stroke dab: ``value`` is a segment's value or :data:`SEED_BACKGROUND`."""
        if self.volume is None:
            return
        if self.seeds is None:
            self.seeds = np.zeros(self.volume.shape, dtype=np.uint16)
        box, ball = self._ball(center_lps, radius_mm)
        if ball.size:
            self.seeds[box][ball] = value
        self.seeds_changed.emit()

    def clear_seeds(self) -> None:
        self.seeds, self.seed_grower = None, None
        self.seeds_changed.emit()

    def grow(self, progress: Any = None) -> LabelMap:
        """Grow-from-seeds (``segment_case.grow_segments``) from the painted seeds; runs in a worker thread.

        Returns the new label map; :meth:`finish_grow` (main thread) stores it with undo. The seeds
        stay, so strokes added afterwards refine the result: the session's maps are updated instead
        of recomputed (Clear seeds ends the session).
        """
        from segmentation.grow_from_seeds import SeedGrower
        from workstation import segment_case

        assert self.case is not None and self.volume is not None and self.label_map is not None
        if self.seeds is None or not (self.seeds == SEED_BACKGROUND).any():
            raise InputError("grow from seeds: paint background strokes and at least one segment's strokes first")
        names = {s.value: {"name": s.name, "color_rgb": s.color_rgb} for s in self.label_map.segments}
        scratch, volume = self._scratch()
        if self.seed_grower is None or self.seed_grower.volume is not self.volume:
            self.seed_grower = SeedGrower(self.volume)
        return segment_case.grow_segments(scratch, self.seeds, background=SEED_BACKGROUND, names=names,
                                          volume_id=volume.id, progress=progress, session=self.seed_grower)

    def finish_grow(self, grown: LabelMap) -> None:
        self.commit(grown, "grow from seeds")

    def undo(self) -> None:
        """Undo the latest change of the label map (:class:`InputError` when it no longer applies)."""
        if self.label_map is not None and self.history.can_undo():
            self._show_labels(self.history.undo()[0])

    def redo(self) -> None:
        if self.label_map is not None and self.history.can_redo():
            self._show_labels(self.history.redo()[0])

    def statistics(self) -> list[Any]:
        from workstation import segment_case

        return [] if self.case is None else segment_case.statistics(self.case, volume_id=self.volume.id)
