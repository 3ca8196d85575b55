"""The live panel: a tracked tool over OpenIGTLink shown in the twin, its live numbers, alarms and recording.

Everything is a call into :mod:`workstation.live` (what ``twin live`` runs): a
:class:`~workstation.live.igtl_stream.TransformReceiver` listens on a port (its own threads), a
:class:`~workstation.live.live_loop.LiveMonitor` turns the queued poses into the twin's numbers, polled by a
``QTimer`` (never blocking the window), and a :class:`~workstation.live.session.SessionRecorder` records
a session into the case (``Record(kind="session")``). The tool is drawn over the slice views (a line from
the tip back along its axis) and in the 3D view when it runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.jobs import error_text, show_error
from ui.tool_overlay import ALARM_COLOR, ToolDisplay, shown_tail
from ui.widgets import spin_box

_STREAM_LINE = re.compile(r"stream (\w+): (.*)$")
_STATUS_STYLE = {"ok": "color: #4c4;", "idle": "color: #bbb;", "error": "color: #f44; font-weight: bold;"}


class LivePanel(QWidget):
    """Listen for a tracked tool, show it and its numbers live, and record sessions into the case."""

    session_recorded = Signal(str)  # the name of the session record added to the case
    status_changed = Signal(str, str)  # state ("ok", "idle", "error"), text

    def __init__(self, document: Document, views: Iterable[QWidget] = (), view3d: Any = None,
                 run_job: Callable[..., Any] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("live-panel")
        self.document, self.view3d, self.run_job = document, view3d, run_job
        self.tool_display = ToolDisplay(views, view3d, actor_name="live-tool")
        self.overlays = self.tool_display.overlays
        self.twin: Any = None
        self.case: Any = None
        self.receiver: Any = None
        self.monitor: Any = None
        self.recorder: Any = None
        self.recording = False
        self.state: Any = None
        self.status = "idle"
        self.timer = QTimer(self)
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.poll)

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.port = QSpinBox(self, objectName="live-port")
        self.port.setRange(0, 65535)
        self.port.setValue(18944)
        self.port.setToolTip("OpenIGTLink port to listen on (0: any free port)")
        self.trajectory = QComboBox(self, objectName="live-trajectory")
        self.margin = spin_box(self, "live-margin", 0.0, 30.0, 2.0)
        form.addRow("Listen on port", self.port)
        form.addRow("Planned trajectory", self.trajectory)
        form.addRow("Safety margin", self.margin)
        layout.addLayout(form)
        row = QHBoxLayout()
        self.listen_button = QPushButton("Listen", self, objectName="live-listen")
        self.listen_button.clicked.connect(lambda: self.start_listening())
        self.stop_button = QPushButton("Stop", self, objectName="live-stop")
        self.stop_button.clicked.connect(self.stop_listening)
        row.addWidget(self.listen_button)
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        self.status_label = QLabel("not listening", self, objectName="live-status")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)

        numbers = QFormLayout()
        self.number_labels: dict[str, QLabel] = {}
        for key, text in (("target", "Distance to target"), ("lateral", "Lateral deviation"),
                          ("angle", "Angle to plan"), ("depth", "Depth along plan")):
            label = QLabel("-", self, objectName=f"live-{key}")
            self.number_labels[key] = label
            numbers.addRow(text, label)
        layout.addLayout(numbers)
        self.structures = QTableWidget(0, 2, self)
        self.structures.setObjectName("live-structures")
        self.structures.setHorizontalHeaderLabels(("Critical structure", "Distance (mm)"))
        self.structures.verticalHeader().setVisible(False)
        self.structures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.structures)
        self.alarm_label = QLabel("no alarm", self, objectName="live-alarm")
        self.alarm_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.alarm_label)

        record_row = QHBoxLayout()
        self.record_name = QLineEdit("session_1", self, objectName="live-record-name")
        self.record_button = QPushButton("Start recording", self, objectName="live-record")
        self.record_button.clicked.connect(self.start_recording)
        self.stop_record_button = QPushButton("Stop recording", self, objectName="live-stop-record")
        self.stop_record_button.clicked.connect(self.stop_recording)
        record_row.addWidget(self.record_name)
        record_row.addWidget(self.record_button)
        record_row.addWidget(self.stop_record_button)
        layout.addLayout(record_row)
        layout.addStretch(1)

        document.case_changed.connect(self._case_changed)
        document.plan_changed.connect(self._refresh_trajectories)
        if parent is not None:
            parent.installEventFilter(self)  # stop the server when the window closes
        self._case_changed()

    # --- state of the widgets -------------------------------------------------------------------------
    def _refresh_trajectories(self) -> None:
        case = self.document.case
        names = [t.name for t in case.plan.trajectories] if case is not None else []
        current = self.trajectory.currentText()
        if names != [self.trajectory.itemText(n) for n in range(self.trajectory.count())]:
            self.trajectory.clear()
            self.trajectory.addItems(names)
            if current in names:
                self.trajectory.setCurrentText(current)
        self._update_buttons()

    def _case_changed(self) -> None:
        self.stop_listening()
        self._refresh_trajectories()

    def _update_buttons(self) -> None:
        listening = self.receiver is not None
        self.listen_button.setEnabled(not listening and self.trajectory.count() > 0)
        self.stop_button.setEnabled(listening)
        for widget in (self.port, self.trajectory, self.margin):
            widget.setEnabled(not listening)
        self.record_button.setEnabled(listening and not self.recording)
        self.stop_record_button.setEnabled(self.recording)
        self.record_name.setEnabled(not self.recording)

    def _set_status(self, state: str, text: str) -> None:
        self.status = state
        self.status_label.setText(text)
        self.status_label.setStyleSheet(_STATUS_STYLE.get(state, ""))
        self.status_changed.emit(state, text)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if watched is self.parent() and event.type() == QEvent.Type.Close:
            self.stop_listening()
        return False

    # --- listening ------------------------------------------------------------------------------------
    @property
    def listening_port(self) -> int | None:
        return int(self.receiver.port) if self.receiver is not None else None

    def start_listening(self, port: int | None = None) -> Any:
        """Prepare the twin for the chosen trajectory (in a job: critical surfaces are indexed) and listen on
        ``port`` (default: the spin box). Returns the job (or, without ``run_job``, whether it listens)."""
        from workstation.live.live_twin import LiveTwin

        case = self.document.case
        if case is None or self.receiver is not None:
            return False
        port = self.port.value() if port is None else int(port)
        trajectory, margin = self.trajectory.currentText() or None, self.margin.value()

        def build(progress: Any) -> Any:
            return LiveTwin(case, trajectory=trajectory, margin_mm=margin)

        if self.run_job is None:
            try:
                twin = build(None)
            except Exception as exc:
                self._failed(exc)
                return False
            return self._listen(twin, port, case)
        self.listen_button.setEnabled(False)
        self._set_status("idle", "preparing the critical structures ...")
        job = self.run_job("Preparing the live twin", build, lambda twin: self._listen(twin, port, case))
        job.failed.connect(self._failed)
        return job

    def _failed(self, exc: BaseException) -> None:
        self._set_status("error", f"cannot listen: {error_text(exc)}")
        self._update_buttons()

    def _listen(self, twin: Any, port: int, case: Any) -> bool:
        from workstation.live.igtl_stream import TransformReceiver
        from workstation.live.live_loop import LiveMonitor

        if self.receiver is not None or case is not self.document.case:  # another case opened meanwhile
            self._update_buttons()
            return False
        try:
            self.receiver = TransformReceiver(port)
        except Exception as exc:  # port taken: one message and a red status
            self._failed(exc)
            show_error(self, "Live", exc)
            return False
        self.twin, self.case = twin, case  # sessions go into the case they were measured in
        self.recorder = self._new_recorder()
        self.monitor = LiveMonitor(twin, self.receiver, self.recorder, out=self._stream_line, print_every_s=1e9)
        names = ", ".join(twin.structure_names) or "none"
        self._set_status("ok", f"listening on {self.receiver.host}:{self.receiver.port} "
                               f"(frame {twin.tracker_frame}); critical: {names}")
        self.structures.setRowCount(0)
        self.timer.start()
        self._update_buttons()
        return True

    def stop_listening(self) -> None:
        """Stop the server (a running recording is saved into the case first)."""
        if self.recording:
            self.stop_recording()
        self.timer.stop()
        if self.receiver is not None:
            self.receiver.close()
            self.receiver, self.monitor, self.twin = None, None, None
            self._set_status("idle", "not listening")
        self.state = None
        self._show_tool(None)
        self._update_buttons()

    def _new_recorder(self) -> Any:
        from workstation.live.session import SessionRecorder

        return SessionRecorder(plan=self.twin.describe(), structure_names=self.twin.structure_names)

    def _stream_line(self, text: str) -> None:
        """Lines of the monitor: stream events set the connection status (alarm lines are shown as numbers)."""
        match = _STREAM_LINE.search(text)
        if match is None:
            return
        kind, detail = match.groups()
        if kind == "connected":
            self._set_status("ok", f"connected: {detail}")
        elif kind in ("malformed", "error"):
            self._set_status("error", f"stream {kind}: {detail}")
        elif kind == "disconnected":
            self._set_status("idle", f"disconnected: {detail}; still listening on port {self.listening_port}")
        else:
            self._set_status(self.status, f"{kind}: {detail}")

    def poll(self) -> None:
        """Process the queued poses (non-blocking) and show the latest numbers and tool."""
        if self.monitor is None:
            return
        try:
            state = self.monitor.poll()
        except Exception as exc:  # a bug in the measurement must not take the window down at 50 Hz
            self.stop_listening()
            self._set_status("error", f"live stopped: {type(exc).__name__}: {exc}")
            return
        if not self.recording and self.recorder.n_poses > 5000:  # nothing kept while not recording
            self.recorder = self.monitor.recorder = self._new_recorder()
        if state is not None:
            self.state = state
            self._show_state(state)

    # --- showing ------------------------------------------------------------------------------------
    def _show_state(self, state: Any) -> None:
        labels = self.number_labels
        labels["target"].setText(f"{state.distance_to_target_mm:.1f} mm")
        labels["lateral"].setText(f"{state.lateral_deviation_mm:.1f} mm")
        labels["angle"].setText(f"{state.angle_deg:.1f} deg")
        labels["depth"].setText(f"{state.depth_mm:.1f} mm")
        distances = state.structure_distances_mm
        self.structures.setRowCount(len(distances))
        for n, (name, value) in enumerate(distances.items()):
            for col, text in enumerate((name, f"{value:.1f}")):
                item = self.structures.item(n, col)
                if item is None:
                    item = QTableWidgetItem()
                    self.structures.setItem(n, col, item)
                item.setText(text)
                item.setForeground(ALARM_COLOR if name in state.breached else QColor(220, 220, 220))
        if state.alarm:
            self.alarm_label.setText(f"ALARM: margin breached by {', '.join(state.breached)}")
            self.alarm_label.setStyleSheet("background: #d00; color: white; font-weight: bold; padding: 4px;")
        else:
            self.alarm_label.setText("no alarm")
            self.alarm_label.setStyleSheet("")
        self._show_tool(state)

    @property
    def alarm(self) -> bool:
        return bool(self.state is not None and self.state.alarm)

    def _show_tool(self, state: Any) -> None:
        if state is None or self.twin is None:
            self.tool_display.clear()
            return
        tail = shown_tail(state.tip_lps, state.axis_lps, self.twin.shaft_tail(state.tip_lps, state.axis_lps))
        self.tool_display.show(np.asarray(state.tip_lps, dtype=float), tail, state.alarm)

    # --- recording ----------------------------------------------------------------------------------
    def start_recording(self) -> None:
        """Start a fresh session recording (the poses from now on)."""
        if self.monitor is None or self.recording:
            return
        if not self.record_name.text().strip():
            show_error(self, "Record session", ValueError("the session needs a name"))
            return
        self.recorder = self.monitor.recorder = self._new_recorder()
        self.recording = True
        self.recorder.add_event(0.0, "user_action", action="start_recording")
        self._update_buttons()

    def stop_recording(self) -> str | None:
        """Stop and add the session to the case (``Record(kind="session")``); its name, or None."""
        from workstation.errors import InputError

        if not self.recording or self.monitor is None:
            return None
        self.recording = False
        self.monitor.poll()
        self.monitor.finish()
        recorder = self.recorder
        self.recorder = self.monitor.recorder = self._new_recorder()
        self._update_buttons()
        name = self.record_name.text().strip()
        if recorder.n_poses == 0:
            show_error(self, "Record session", InputError(f"session {name!r}: no pose received; nothing recorded"))
            return None
        record = self.case.add_record(recorder.to_record(name), replace_same_name=True)
        if self.case is self.document.case:
            self.document.modified = True
        self._set_status(self.status, f"{self.status_label.text()}\nrecorded session {record.name!r}: "
                                      f"{recorder.n_poses} poses")
        self.session_recorded.emit(record.name)
        return record.name
