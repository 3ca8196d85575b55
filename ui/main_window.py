"""The main window: 4-up (axial, coronal, sagittal, 3D) or 1-up, menus, segment editor, status bar."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QThreadPool, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QGridLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QWidget,
)

from ui import slicing
from ui.document import WINDOW_PRESETS, Document
from ui.jobs import Job, show_error
from ui.live_docks import install_live_docks
from ui.mechanics_panel import MechanicsPanel
from ui.planning_panel import PlanningPanel
from ui.rehearsal_panel import RehearsalPanel
from ui.segment_panel import SegmentPanel
from ui.slice_view import SliceView
from ui.view3d import View3D
from workstation.errors import InputError

MAX_RECENT = 8
VOLUME_FILTER = "Volume files (*.nii *.nii.gz *.nrrd *.nhdr *.mha *.mhd);;All files (*)"


def settings() -> QSettings:
    """The app's settings (an INI file in the user's config folder; tests point it elsewhere)."""
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, "surgical-twin", "workstation")


def warm_imports() -> None:
    """Import the modules the case's first display needs (segmentation, previews); called in the worker
    thread that loads a case, so that the GUI thread does not stall on them when the case shows."""
    import numpy as np

    import workstation.preview
    import workstation.segment_case  # noqa: F401
    from segmentation.components import fill_slice_holes

    fill_slice_holes(np.zeros((1, 3, 3), dtype=bool))  # numba: the level-trace preview's first hover


def loaded(value: Any) -> Any:
    warm_imports()
    return value


def classify(path: Path) -> str:
    """What a dropped/opened path is: 'case', 'volume' or 'dicom'."""
    from workstation.io.volume_files import is_volume_file

    if path.is_dir() and (path / "manifest.json").is_file():
        return "case"
    if path.is_file() and path.suffix.lower() == ".zip":
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                if any(n.rstrip("/").endswith("manifest.json") and n.count("/") <= 1 for n in archive.namelist()):
                    return "case"
        except zipfile.BadZipFile:
            return "dicom"  # scan_path reports the damage as an InputError
    if path.is_file() and is_volume_file(path):
        return "volume"
    return "dicom"


class MainWindow(QMainWindow):
    """The workstation window. ``open_path`` accepts a case bundle, a volume file or DICOM."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("main-window")
        self.setWindowTitle("Surgical Twin")
        self.setAcceptDrops(True)
        self.document = Document(self)
        self.jobs: list[Job] = []
        self.layout_mode = "4-up"
        self.active_view = "axial"

        self.views = {plane: SliceView(self.document, plane, self) for plane in slicing.PLANES}
        self.view3d = View3D(self.document, self)
        central = QWidget(self)
        central.setObjectName("viewports")
        self.grid = QGridLayout(central)
        self.grid.setContentsMargins(2, 2, 2, 2)
        self.grid.setSpacing(2)
        self._place_views()
        self.setCentralWidget(central)
        for view in self.views.values():
            view.hovered.connect(self._hovered)
            view.activated.connect(self._activated)
            view.maximize_requested.connect(self.toggle_layout)

        self.segment_panel = SegmentPanel(self.document, self.run_job, self)
        self.segment_panel.tool_changed.connect(self._set_tool)
        self.segment_panel.brush_changed.connect(self._set_brush)
        self.segment_panel.segment_selected.connect(self._set_segment)
        dock = QDockWidget("Segment editor", self)
        dock.setObjectName("segment-dock")
        dock.setWidget(self.segment_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.segment_dock = dock

        self.planning_panel = PlanningPanel(self.document, self.run_job, self)
        self.planning_panel.tool_requested.connect(self._set_tool)
        planning_dock = QDockWidget("Planning", self)
        planning_dock.setObjectName("planning-dock")
        planning_dock.setWidget(self.planning_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, planning_dock)
        self.tabifyDockWidget(dock, planning_dock)
        dock.raise_()
        self.planning_dock = planning_dock
        self.mechanics_panel = MechanicsPanel(self.document, self.run_job, self)
        self.mechanics_panel.tool_requested.connect(self._set_tool)
        mechanics_dock = QDockWidget("Mechanics", self)
        mechanics_dock.setObjectName("mechanics-dock")
        mechanics_dock.setWidget(self.mechanics_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, mechanics_dock)
        self.tabifyDockWidget(planning_dock, mechanics_dock)
        dock.raise_()
        self.mechanics_dock = mechanics_dock
        self.rehearsal_panel = RehearsalPanel(self.document, self.view3d, self.run_job, self)
        rehearsal_dock = QDockWidget("Rehearsal", self)
        rehearsal_dock.setObjectName("rehearsal-dock")
        rehearsal_dock.setWidget(self.rehearsal_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, rehearsal_dock)
        self.tabifyDockWidget(mechanics_dock, rehearsal_dock)
        dock.raise_()
        self.rehearsal_dock = rehearsal_dock
        for view in self.views.values():
            view.outline_refused.connect(lambda message: self.statusBar().showMessage(message, 5000))
            for other in self.views.values():
                view.alt_changed.connect(other.alt_held)
            view.point_picked.connect(self.planning_panel.point_picked)
            view.point_picked.connect(self.mechanics_panel.point_picked)
            view.live_dragged.connect(self._live_dragged)
            view.endpoint_dragged.connect(self._endpoint_dragged)

        self.position_label = QLabel("", self)
        self.position_label.setObjectName("status-position")
        self.statusBar().addPermanentWidget(self.position_label)
        self._build_menus()
        install_live_docks(self)  # the Live and Outputs panels, with their menu
        toolbar = self.addToolBar("Volume")
        toolbar.setObjectName("volume-toolbar")
        toolbar.addWidget(QLabel(" Volume: ", self))
        self.volume_combo = QComboBox(self)
        self.volume_combo.setObjectName("volume-combo")
        self.volume_combo.setMinimumContentsLength(30)
        self.volume_combo.activated.connect(
            lambda index: self.document.set_volume(self.volume_combo.itemData(index)))
        toolbar.addWidget(self.volume_combo)
        self.document.case_changed.connect(self._case_changed)
        self.document.crosshair_changed.connect(self._crosshair_changed)
        self.resize(1400, 900)
        self.restore_settings()

    # --- layout ----------------------------------------------------------------------------
    def _place_views(self) -> None:
        shown = self.view3d if self.active_view == "3d" else self.views[self.active_view]
        for widget in (*self.views.values(), self.view3d):
            self.grid.removeWidget(widget)
            widget.hide()
        if self.layout_mode == "4-up":
            for widget, (r, c) in zip((self.views["axial"], self.view3d, self.views["coronal"],
                                       self.views["sagittal"]), ((0, 0), (0, 1), (1, 0), (1, 1)), strict=True):
                self.grid.addWidget(widget, r, c)
                widget.show()
        else:
            self.grid.addWidget(shown, 0, 0)
            shown.show()
            shown.setFocus()
        self.active_view = "3d" if shown is self.view3d else shown.plane  # hiding moved the focus elsewhere

    def set_layout(self, mode: str, view: str | None = None) -> None:
        """``"4-up"`` or ``"1-up"`` (showing ``view``, default the active one)."""
        if view is not None:
            self.active_view = view
        self.layout_mode = mode
        self._place_views()
        settings().setValue("layout", mode)

    def toggle_layout(self, view: str | None = None) -> None:
        self.set_layout("1-up" if self.layout_mode == "4-up" else "4-up", view)

    def _activated(self, plane: str) -> None:
        self.active_view = plane

    # --- menus and shortcuts -----------------------------------------------------------------
    def _action(self, menu: Any, text: str, slot: Callable[..., Any], shortcut: Any = None, name: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.setObjectName(name or text)
        action.triggered.connect(lambda _=False: slot())
        menu.addAction(action)
        self.addAction(action)
        return action

    def _undo_redo(self, step: Callable[[], None]) -> None:
        try:
            step()
        except InputError as exc:  # the label map changed outside the journal
            show_error(self, "Undo", exc)

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "Open DICOM folder...", self.open_dicom_dialog, "Ctrl+O", "open-dicom")
        self._action(file_menu, "Open DICOM zip or DICOMDIR...", self.open_dicom_file_dialog, None, "open-dicom-file")
        self._action(file_menu, "Open volume file (NIfTI, NRRD)...", self.open_volume_dialog, "Ctrl+Shift+O",
                     "open-volume")
        self._action(file_menu, "Open case...", self.open_case_dialog, "Ctrl+Alt+O", "open-case")
        self._action(file_menu, "Open sample case", self.open_sample, None, "open-sample")
        self.recent_menu = file_menu.addMenu("Recent cases")
        file_menu.addSeparator()
        self.save_action = self._action(file_menu, "Save case", self.save_case, QKeySequence.StandardKey.Save,
                                        "save-case")
        self._action(file_menu, "Save case as...", self.save_case_as, QKeySequence.StandardKey.SaveAs, "save-case-as")
        file_menu.addSeparator()
        self._action(file_menu, "Export plan (JSON, LPS mm)...", lambda: self.export_plan("json"), None,
                     "export-plan-json")
        self._action(file_menu, "Export plan (3D Slicer markups)...", lambda: self.export_plan("markups"), None,
                     "export-plan-markups")
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit, "quit")

        edit_menu = bar.addMenu("&Edit")
        self._action(edit_menu, "Undo", lambda: self._undo_redo(self.document.undo), QKeySequence.StandardKey.Undo,
                     "undo-action")
        self._action(edit_menu, "Redo", lambda: self._undo_redo(self.document.redo), "Ctrl+Y", "redo-action")

        view_menu = bar.addMenu("&View")
        self._action(view_menu, "4-up layout", lambda: self.set_layout("4-up"), "Ctrl+4", "layout-4up")
        self._action(view_menu, "1-up: active view", lambda: self.set_layout("1-up"), "Ctrl+1", "layout-1up")
        self._action(view_menu, "1-up: 3D", lambda: self.set_layout("1-up", "3d"), "Ctrl+3", "layout-3d")
        self._action(view_menu, "Toggle 1-up/4-up", self.toggle_layout, "F", "layout-toggle")
        self._action(view_menu, "Reset views", self.reset_views, "Ctrl+R", "reset-views")
        self.follow_volume_action = self._action(view_menu, "Views follow an oblique volume's slices",
                                                 self._follow_volume, None, "views-follow-volume")
        self.follow_volume_action.setCheckable(True)
        view_menu.addSeparator()
        for n, (name, (level, width)) in enumerate(WINDOW_PRESETS.items(), start=1):
            self._action(view_menu, f"Window: {name} (W {width:.0f} L {level:.0f})",
                         lambda lv=level, w=width: self.document.set_window(lv, w), str(n), f"window-{n}")

        tools_menu = bar.addMenu("&Tools")
        for tool, text, key in (("navigate", "Navigate", "Esc"), ("paint", "Paint brush", "B"),
                                ("erase", "Erase brush", "E"), ("seed", "Seed strokes", "G"),
                                ("seed_background", "Background seed strokes", "Shift+G"),
                                ("draw", "Draw outline (drag around a region; Ctrl on release: erase)", "D"),
                                ("scissors", "Scissors through all slices (drag around; Ctrl on release: keep inside)",
                                 "X"),
                                ("level_trace", "Level trace (click an edge; Alt: darker, Ctrl: erase)", "V")):
            self._action(tools_menu, text, lambda t=tool: self.segment_panel.set_tool(t), key, f"tool-action-{tool}")
        tools_menu.addSeparator()
        self._action(tools_menu, "Place landmarks", lambda: self._set_tool("landmark"), "L", "tool-action-landmark")
        self._action(tools_menu, "Place trajectories (entry, then target; drag ends)",
                     lambda: self._set_tool("trajectory"), "T", "tool-action-trajectory")
        self._action(tools_menu, "Resection plane (two points in a view)", lambda: self._set_tool("plane"), "P",
                     "tool-action-plane")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Mouse and keys", self.show_help, "F1", "help")
        self._update_recent_menu()

    def show_help(self) -> None:
        QMessageBox.information(self, "Mouse and keys", (
            "Left click/drag: move the crosshair (or use the active tool)\n"
            "Right drag: window (left/right) and level (up/down)\n"
            "Middle drag or Shift+left drag: pan;  Ctrl+wheel or +/-: zoom;  R: reset a view\n"
            "Wheel, Up/Down, PageUp/PageDown: scroll slices (Shift+Page: 10)\n"
            "1-5: window presets;  F or double-click: 1-up/4-up;  Ctrl+3: 3D only\n"
            "B paint, E erase, G seed, Shift+G background seed, D draw an outline (Ctrl on release: erase), "
            "X scissors (Ctrl on release: keep inside), V level trace (Alt: darker, Ctrl: erase), Esc navigate;  "
            "Ctrl+Z / Ctrl+Y undo/redo\n"
            "L landmark, T trajectory (click entry then target; drag an end to move it, safety re-checked live)"))

    # --- views and status bar ------------------------------------------------------------------
    def _endpoint_dragged(self, name: str, end: str, point: Any) -> None:
        try:
            self.planning_panel.move_endpoint(name, end, point)
        except Exception as exc:  # shown once, as a message
            for view in self.views.values():
                view._drag = None
            show_error(self, "Trajectory", exc)

    def _live_dragged(self, displacement: Any) -> None:
        try:
            self.mechanics_panel.live_drag(np.asarray(displacement, dtype=float))
        except Exception as exc:  # a solver refusal ends the drag with one message
            for view in self.views.values():
                view._drag = None
            show_error(self, "Live", exc)

    def _set_tool(self, tool: str) -> None:
        self.segment_panel.show_tool(tool)
        self.planning_panel.set_tool_checked(tool)
        self.mechanics_panel.set_tool_checked(tool)
        if tool in ("landmark", "trajectory", "plane"):
            self.planning_dock.raise_()
        elif tool in ("push", "live"):
            self.mechanics_dock.raise_()
        for view in self.views.values():
            view.tool = tool
            view.setCursor(Qt.CursorShape.CrossCursor if tool != "navigate" else Qt.CursorShape.ArrowCursor)
            view.update()  # a tool's overlay (the level-trace preview) comes or goes
        volume = self.document.volume
        in_slice = tool in ("draw", "level_trace") or (tool in ("paint", "erase") and self.document.brush_2d)
        if in_slice and volume is not None and slicing.is_oblique(volume) and not self.document.views_follow_volume:
            # 3D Slicer warns the same way when a slice view is not aligned with the segmentation
            self.statusBar().showMessage(
                f"{tool.replace('_', ' ')}: this volume is oblique to the views, so the region is edited in the voxel "
                "slice nearest the view, which may cross it (View > Views follow an oblique volume's slices)", 10000)
        else:
            self.statusBar().showMessage(f"tool: {tool}", 3000)

    def _follow_volume(self) -> None:
        """Show an oblique volume in its own voxel slices (3D Slicer's "rotate to volume plane"), so
        draw, level trace, fill between slices and the 2-D brush fill exactly what a view shows."""
        self.document.set_views_follow_volume(self.follow_volume_action.isChecked())
        for view in self.views.values():
            view.reset_view()

    def _set_brush(self, radius_mm: float) -> None:
        for view in self.views.values():
            view.brush_radius_mm = float(radius_mm)

    def _set_segment(self, name: str | None) -> None:
        for view in self.views.values():
            view.segment_name = name

    def reset_views(self) -> None:
        for view in self.views.values():
            view.reset_view()

    def describe_point(self, point: Any) -> str:
        """'LPS x, y, z mm  HU v  [segment]' for the status bar."""
        doc = self.document
        if point is None or doc.volume is None:
            return ""
        point = np.asarray(point, dtype=float)
        value = doc.volume.sample(point[None], order=0)[0]
        unit = "HU" if doc.volume.modality == "CT" else "value"
        text = f"LPS {point[0]:.1f}, {point[1]:.1f}, {point[2]:.1f} mm   "
        text += f"{unit} {value:.0f}" if np.isfinite(value) else "outside the volume"
        labels = doc.label_array()
        if labels is not None and np.isfinite(value):
            # a point on the volume's outer half voxel samples the edge voxel (clipped like Volume.sample)
            i, j, k = np.clip(np.rint(doc.volume.lps_to_ijk_points(point)), 0, np.array(doc.volume.size_ijk) - 1
                              ).astype(int)
            label = int(labels[k, j, i])
            name = next((s.name for s in doc.segments() if s.value == label), None)
            if name:
                text += f"   [{name}]"
        return text

    def _hovered(self, point: Any) -> None:
        self.position_label.setText(self.describe_point(point))

    def _crosshair_changed(self) -> None:
        if not self.position_label.text():
            self.statusBar().showMessage(self.describe_point(self.document.crosshair_lps), 2000)

    def _case_changed(self) -> None:
        doc = self.document
        self.volume_combo.blockSignals(True)
        self.volume_combo.clear()
        for volume in (doc.case.volumes.values() if doc.case else ()):
            k, j, i = volume.shape
            self.volume_combo.addItem(f"{volume.id}: {volume.modality} {i}x{j}x{k}", volume.id)
        if doc.volume is not None:
            self.volume_combo.setCurrentIndex(self.volume_combo.findData(doc.volume.id))
        self.volume_combo.setEnabled(self.volume_combo.count() > 1)
        self.volume_combo.blockSignals(False)
        name = doc.case.name if doc.case else ""
        where = f" - {doc.case_path}" if doc.case_path else ""
        self.setWindowTitle(f"Surgical Twin - {name}{where}")
        if doc.volume is not None:
            self.statusBar().showMessage(f"{doc.volume!r}", 5000)

    # --- jobs --------------------------------------------------------------------------------
    def run_job(self, title: str, work: Callable[[Any], Any], on_done: Callable[[Any], Any] | None = None) -> Job:
        """Run ``work(progress)`` in a worker thread with a progress dialog; ``on_done(result)`` on the GUI thread."""
        job = Job(self, title, work, on_done=on_done)
        self.jobs.append(job)
        job.ended.connect(lambda: self.jobs.remove(job) if job in self.jobs else None)
        return job

    @property
    def busy(self) -> bool:
        return bool(self.jobs)

    # --- opening and saving --------------------------------------------------------------------
    def _last_dir(self) -> str:
        return str(settings().value("last_dir", str(Path.home())))

    def open_dicom_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM folder", self._last_dir())
        if path:
            self.open_path(path)

    def open_dicom_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open DICOM zip or DICOMDIR", self._last_dir(),
                                              "DICOM (*.zip DICOMDIR *.dcm);;All files (*)")
        if path:
            self.open_path(path)

    def open_volume_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open volume file", self._last_dir(), VOLUME_FILTER)
        if path:
            self.open_path(path)

    def open_case_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open case bundle (folder with manifest.json)", self._last_dir())
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike[str]) -> Job | None:
        """Open a case bundle, a volume file, or DICOM (through the series browser when several series)."""
        path = Path(path)
        if not path.exists():
            show_error(self, "Open", FileNotFoundError(f"{path}: no such file or folder"))
            return None
        settings().setValue("last_dir", str(path.parent))
        kind = classify(path)
        if kind == "case":
            from workstation.bundle import load_case

            return self.run_job(f"Opening case {path.name}", lambda progress: loaded(load_case(path)),
                                lambda case: self._show_case(case, path))
        if kind == "volume":
            return self._import(path, None)
        from workstation.dicom.scan import scan_path

        def scan_with_thumbnails(progress: Any) -> tuple[Any, Any]:
            from ui.series_browser import series_thumbnails

            scan = scan_path(path, progress=progress)
            return scan, (series_thumbnails(scan) if len(scan.candidates) > 1 else {})

        return self.run_job(f"Scanning {path.name}", scan_with_thumbnails,
                            lambda result: self._choose_series(path, *result))

    def _choose_series(self, path: Path, scan: Any, thumbnails: Any = None) -> None:
        from ui.series_browser import SeriesBrowser

        usable = scan.usable()
        if len(scan.candidates) == 1 and len(usable) == 1:
            self._import(path, str(usable[0].number))
            return
        if not usable:
            from workstation.errors import InputError

            raise InputError(f"{scan.source}: {scan.why_nothing_usable()}")
        browser = SeriesBrowser(scan, self, thumbnails=thumbnails)
        self.series_browser = browser
        browser.accepted.connect(lambda: self._import(path, str(browser.chosen().number)) if browser.chosen() else None)
        browser.open()

    def _import(self, path: Path, series: str | None) -> Job:
        from workstation.importer import import_path

        name = path.stem.split(".")[0] or "case"
        return self.run_job(f"Importing {path.name}",
                            lambda progress: loaded(import_path(path, series=series, name=name, progress=progress)),
                            lambda result: self._show_case(result.case, None))

    def open_sample(self) -> Job:
        from workstation.importer import import_path
        from workstation.samples import sample_dicom_dir

        return self.run_job("Opening the sample CT",
                            lambda progress: loaded(import_path(sample_dicom_dir(), name="sample-ct-abdomen-20",
                                                                progress=progress)),
                            lambda result: self._show_case(result.case, None))

    def _show_case(self, case: Any, path: Path | None) -> None:
        self.document.set_case(case, path)
        if path is not None:
            self.add_recent(path)

    def save_case(self) -> Job | None:
        if self.document.case is None:
            return None
        if self.document.case_path is None:
            return self.save_case_as()
        return self._save_to(self.document.case_path)

    def save_case_as(self) -> Job | None:
        if self.document.case is None:
            return None
        path, _ = QFileDialog.getSaveFileName(self, "Save case bundle (a folder, or .zip)",
                                              str(Path(self._last_dir()) / self.document.case.name))
        return self._save_to(Path(path)) if path else None

    def _save_to(self, path: Path) -> Job:
        from workstation.bundle import save_case

        case = self.document.case

        def saved(result: Path) -> None:
            self.document.case_path = Path(result)
            self.document.modified = False
            self.add_recent(Path(result))
            self._case_changed()
            self.statusBar().showMessage(f"saved {result}", 5000)

        return self.run_job(f"Saving {path.name}", lambda progress: save_case(case, path, progress=progress), saved)

    def export_plan(self, kind: str) -> Path | None:
        """Write the case's plan: the schema-checked JSON (``twin plan export``) or Slicer markups."""
        case = self.document.case
        if case is None:
            return None
        suffix, title = (".json", "plan JSON") if kind == "json" else (".mrk.json", "Slicer markups")
        path, _ = QFileDialog.getSaveFileName(self, f"Export {title}",
                                              str(Path(self._last_dir()) / f"{case.name}-plan{suffix}"))
        if not path:
            return None
        try:
            if kind == "json":
                from workstation.export.plan_json import export_plan

                export_plan(case, path, volume_id=self.document.volume.id if self.document.volume else None)
            else:
                from workstation.export.slicer_markups import write_markups

                write_markups(case.plan, path)
        except Exception as exc:  # bad plan or unwritable file: one message
            show_error(self, f"Export {title}", exc)
            return None
        self.statusBar().showMessage(f"exported {title} to {path}", 5000)
        return Path(path)

    # --- recent cases, settings, drag and drop -------------------------------------------------------
    def recent(self) -> list[str]:
        value = settings().value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def add_recent(self, path: Path) -> None:
        entries = [str(Path(path).resolve())] + [p for p in self.recent() if p != str(Path(path).resolve())]
        settings().setValue("recent", entries[:MAX_RECENT])
        self._update_recent_menu()

    def _update_recent_menu(self) -> None:
        self.recent_menu.clear()
        for entry in self.recent():
            action = self.recent_menu.addAction(entry)
            action.triggered.connect(lambda _=False, p=entry: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.recent()))

    def restore_settings(self) -> None:
        store = settings()
        geometry = store.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        state = store.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)
        brush = store.value("brush_radius_mm")
        if brush is not None:
            self.segment_panel.brush.setValue(float(brush))
        if store.value("layout") in ("4-up", "1-up"):
            self.set_layout(str(store.value("layout")))

    def save_settings(self) -> None:
        store = settings()
        store.setValue("geometry", self.saveGeometry())
        store.setValue("window_state", self.saveState())
        store.setValue("brush_radius_mm", self.segment_panel.brush.value())
        store.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.document.modified and not os.environ.get("TWIN_APP_NO_PROMPT"):
            answer = QMessageBox.question(self, "Unsaved changes", "The case has unsaved changes. Quit anyway?",
                                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        for job in list(self.jobs):  # a worker must not outlive the window it reports to
            job.cancel()
        QThreadPool.globalInstance().waitForDone(30000)
        QApplication.processEvents()
        self.save_settings()
        self.view3d.close_plotter()
        super().closeEvent(event)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            QTimer.singleShot(0, lambda: self.open_path(paths[0]))
