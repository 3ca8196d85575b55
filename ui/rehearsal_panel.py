"""The rehearsal panel: standard views, camera bookmarks (saved in the case), the probe's-eye view,
a fly-through down a trajectory, and snapshots of the 3D view.

Cameras come from :mod:`workstation.render.cameras` (what ``twin render`` uses) and are stored as
``Record(kind="camera")``; the 3D view must be running (a GL display).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.view3d import View3D

VIEWS = ("anterior", "posterior", "left", "right", "superior", "inferior")


class RehearsalPanel(QWidget):
    """Cameras of the 3D view; everything is a call into ``workstation.render.cameras``."""

    def __init__(self, document: Document, view3d: View3D, run_job: Callable[..., Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("rehearsal-panel")
        self.document, self.view3d = document, view3d
        self.flight: list[Any] = []
        self.timer = QTimer(self)
        self.timer.setInterval(40)
        self.timer.timeout.connect(self._next_frame)
        layout = QVBoxLayout(self)
        grid = QGridLayout()
        for n, view in enumerate(VIEWS):
            button = QPushButton(view.capitalize(), self, objectName=f"view-{view}")
            button.clicked.connect(lambda _=False, v=view: self.standard(v))
            grid.addWidget(button, n // 3, n % 3)
        layout.addLayout(grid)
        layout.addWidget(QLabel("Camera bookmarks (saved with the case):", self))
        self.bookmarks = QListWidget(self)
        self.bookmarks.setObjectName("camera-bookmarks")
        self.bookmarks.itemDoubleClicked.connect(lambda item: self.go_to(item.text()))
        layout.addWidget(self.bookmarks)
        row = QHBoxLayout()
        self.save_button = QPushButton("Save view", self, objectName="save-camera")
        self.save_button.clicked.connect(lambda: self.save_view())
        self.snapshot_button = QPushButton("Snapshot...", self, objectName="snapshot")
        self.snapshot_button.clicked.connect(lambda: self.snapshot())
        row.addWidget(self.save_button)
        row.addWidget(self.snapshot_button)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.trajectory = QComboBox(self, objectName="rehearsal-trajectory")
        self.probe_button = QPushButton("Probe's eye", self, objectName="probe-view")
        self.probe_button.clicked.connect(self.probe)
        self.fly_button = QPushButton("Fly through", self, objectName="fly-through")
        self.fly_button.clicked.connect(self.fly_through)
        row.addWidget(self.trajectory, 1)
        row.addWidget(self.probe_button)
        row.addWidget(self.fly_button)
        layout.addLayout(row)
        self.status = QLabel("", self)
        self.status.setObjectName("rehearsal-status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)
        document.case_changed.connect(self.refresh)
        document.plan_changed.connect(self.refresh)
        self.refresh()

    def _ready(self) -> bool:
        if self.view3d.plotter is None:
            self.status.setText(self.view3d.reason or "the 3D view is starting")
            return False
        return self.document.case is not None

    def refresh(self) -> None:
        case = self.document.case
        self.bookmarks.clear()
        self.trajectory.clear()
        if case is None:
            return
        self.bookmarks.addItems([r.name for r in case.records_of("camera")])
        self.trajectory.addItems([t.name for t in case.plan.trajectories])

    def standard(self, view: str) -> None:
        from workstation.render.cameras import standard_view

        if self._ready():
            size = self.view3d.plotter.window_size
            self.view3d.set_camera(standard_view(view, self.view3d.scene_bounds(), aspect=size[0] / max(size[1], 1)))
            self.status.setText(f"{view} view")

    def save_view(self, name: str | None = None) -> str | None:
        if not self._ready():
            return None
        case = self.document.case
        name = name or f"view_{len(case.records_of('camera')) + 1}"
        case.add_record(self.view3d.camera_pose().to_record(name), replace_same_name=True)
        self.document.modified = True
        self.refresh()
        self.status.setText(f"camera '{name}' saved in the case")
        return name

    def go_to(self, name: str) -> None:
        from workstation.render.cameras import CameraPose

        if self._ready():
            self.view3d.set_camera(CameraPose.from_meta(self.document.case.record("camera", name).meta))
            self.status.setText(f"camera '{name}'")

    def _selected_trajectory(self) -> Any:
        from workstation.render.cameras import find_trajectory

        return find_trajectory(self.document.case.plan.trajectories, self.trajectory.currentText())

    def probe(self) -> None:
        from ui.jobs import show_error
        from workstation.render.cameras import probe_view

        if not self._ready():
            return
        try:
            self.view3d.set_camera(probe_view(self._selected_trajectory()))
        except Exception as exc:  # no trajectory: one message
            show_error(self, "Probe's eye", exc)
            return
        self.status.setText(f"probe's-eye view along {self.trajectory.currentText()}")

    def fly_through(self, n_frames: int = 60) -> None:
        from ui.jobs import show_error
        from workstation.render.cameras import trajectory_flythrough

        if not self._ready():
            return
        try:
            self.flight = list(trajectory_flythrough(self._selected_trajectory(), n_frames))
        except Exception as exc:
            show_error(self, "Fly through", exc)
            return
        self.timer.start()

    def _next_frame(self) -> None:
        if not self.flight or self.view3d.plotter is None:
            self.timer.stop()
            self.status.setText("fly-through done")
            return
        self.view3d.set_camera(self.flight.pop(0))
        self.status.setText(f"fly-through: {len(self.flight)} frames to go")

    def snapshot(self, path: str | None = None) -> Path | None:
        from workstation.io.atomic import atomic_path

        if not self._ready():
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Snapshot of the 3D view", "snapshot.png", "PNG (*.png)")
            if not path:
                return None
        target = Path(path)
        import numpy as np
        from PySide6.QtGui import QImage

        rgb = np.ascontiguousarray(self.view3d.grab_rgb()[..., :3])
        image = QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888)
        try:
            with atomic_path(target) as tmp:
                if not image.save(str(tmp), "PNG"):
                    raise OSError(f"{target}: could not write the snapshot")
        except Exception as exc:  # unwritable folder: one message
            from ui.jobs import show_error

            show_error(self, "Snapshot", exc)
            return None
        self.status.setText(f"snapshot {target}")
        return target
