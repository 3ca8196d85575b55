"""The replay panel: a recorded session of the case played back in the twin at any speed, or scrubbed.

A session is a ``Record(kind="session")`` (recorded by the live panel or ``twin live --record``). The panel
reads it through :mod:`workstation.live.session` (:func:`~workstation.live.session.state_at`: the pose,
numbers, alarm and events at a session time, as the headless :func:`~workstation.live.session.replay`
yields them). A ``QTimer`` advances the session time by the wall-clock time elapsed times the chosen
speed (never blocking the window); the time slider seeks. The tool is drawn at each replayed pose over the
slice views and in the 3D view (:class:`ui.tool_overlay.ToolDisplay`, amber; red while the recorded alarm
is on), and the numbers recorded at that moment are shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.jobs import error_text
from ui.tool_overlay import SHOWN_SHAFT_MM, ToolDisplay, inserted_tail, shown_tail

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
REPLAY_COLOR = QColor(255, 190, 0)  # amber: a recorded tool, told apart from the live (green) one
TICK_MS = 30
SLIDER_STEPS_PER_S = 1000  # the slider counts milliseconds of session time
_ALARM_STYLE = "background: #d00; color: white; font-weight: bold; padding: 4px;"


class ReplayPanel(QWidget):
    """Pick a recorded session, play/pause it at a chosen speed, scrub it, and see the tool and its numbers.

    ``clock`` (seconds, monotonic) paces the playback; the default is :func:`time.monotonic`.
    """

    position_changed = Signal(float)  # session time shown (s)
    finished = Signal()  # the playback reached the end of the session

    def __init__(self, document: Document, views: Iterable[QWidget] = (), view3d: Any = None,
                 parent: QWidget | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.setObjectName("replay-panel")
        self.document = document
        self.clock = clock
        self.tool_display = ToolDisplay(views, view3d, actor_name="replay-tool", color=REPLAY_COLOR)
        self.overlays = self.tool_display.overlays
        self.record: Any = None
        self.state: Any = None
        self.duration_s = 0.0
        self.position_s = 0.0
        self._anchor = (0.0, 0.0)  # (clock time, session time) when playback last (re)started
        self.timer = QTimer(self)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

        layout = QVBoxLayout(self)
        form = QFormLayout()
        self.session = QComboBox(self, objectName="replay-session")
        self.session.currentTextChanged.connect(self._session_chosen)
        self.speed = QComboBox(self, objectName="replay-speed")
        for speed in SPEEDS:
            self.speed.addItem(f"{speed:g}x", speed)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.currentIndexChanged.connect(self._speed_chosen)
        form.addRow("Session", self.session)
        form.addRow("Speed", self.speed)
        layout.addLayout(form)

        row = QHBoxLayout()
        self.play_button = QPushButton("Play", self, objectName="replay-play")
        self.play_button.clicked.connect(self.toggle)
        self.slider = QSlider(Qt.Orientation.Horizontal, self, objectName="replay-slider")
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self._slider_moved)
        self._moving_slider = False
        self.time_label = QLabel("-", self, objectName="replay-time")
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.time_label)
        layout.addLayout(row)

        numbers = QFormLayout()
        self.number_labels: dict[str, QLabel] = {}
        for key, text in (("target", "Distance to target"), ("lateral", "Lateral deviation"),
                          ("angle", "Angle to plan"), ("depth", "Depth along plan"),
                          ("nearest", "Nearest critical structure")):
            label = QLabel("-", self, objectName=f"replay-{key}")
            self.number_labels[key] = label
            numbers.addRow(text, label)
        layout.addLayout(numbers)
        self.alarm_label = QLabel("no alarm", self, objectName="replay-alarm")
        self.alarm_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.alarm_label)
        self.event_label = QLabel("", self, objectName="replay-event")
        self.event_label.setWordWrap(True)
        layout.addWidget(self.event_label)
        self.status_label = QLabel("", self, objectName="replay-status")
        self.status_label.setWordWrap(True)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        document.case_changed.connect(self.refresh_sessions)
        self.refresh_sessions()

    # --- sessions ---------------------------------------------------------------------------------------
    def refresh_sessions(self, *_: Any) -> None:
        """List the case's session records (keeping the chosen one when it is still there)."""
        case = self.document.case
        names = [r.name for r in case.records_of("session")] if case is not None else []
        current = self.session.currentText()
        listed = [self.session.itemText(n) for n in range(self.session.count())]
        if (names == listed and self.record is not None and case is not None and current in names
                and case.record("session", current) is self.record):
            return  # same sessions, same one chosen: keep the replay where it is
        self.session.blockSignals(True)
        self.session.clear()
        self.session.addItems(names)
        if current in names:
            self.session.setCurrentText(current)
        self.session.blockSignals(False)
        self._session_chosen(self.session.currentText())

    def select_session(self, name: str) -> None:
        self.refresh_sessions()
        self.session.setCurrentText(name)
        if self.record is None or self.record.name != name:
            self._session_chosen(name)

    def _session_chosen(self, name: str) -> None:
        from workstation.live.session import check_session, session_duration_s

        self.pause()
        self.record, self.state, self.duration_s = None, None, 0.0
        case = self.document.case
        if case is not None and name:
            try:
                record = check_session(case.record("session", name))
                if len(record.arrays["t_s"]) == 0:
                    raise ValueError(f"session {name!r}: no pose recorded, nothing to replay")
                self.record, self.duration_s = record, session_duration_s(record)
            except Exception as exc:  # a damaged record is reported, never raised into Qt
                self.status_label.setText(f"cannot replay: {error_text(exc)}")
        self._moving_slider = True
        self.slider.setRange(0, int(round(self.duration_s * SLIDER_STEPS_PER_S)))
        self._moving_slider = False
        if self.record is not None:
            meta = self.record.meta
            self.status_label.setText(f"{meta.get('n_poses', len(self.record.arrays['t_s']))} poses against "
                                      f"trajectory {meta.get('trajectory', '?')}, recorded "
                                      f"{meta.get('started_utc', '?')}")
            self.seek(0.0)
        else:
            if self.session.count() == 0:
                self.status_label.setText("no recorded session: record one in the Live panel")
            self.tool_display.clear()
            self._clear_numbers()
        self._update_widgets()

    def _update_widgets(self) -> None:
        has = self.record is not None
        for widget in (self.play_button, self.slider, self.speed):
            widget.setEnabled(has)
        self.session.setEnabled(self.session.count() > 0)

    def showEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        self.refresh_sessions()  # sessions may have been added while the panel was hidden
        super().showEvent(event)

    # --- playback ---------------------------------------------------------------------------------------
    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    @property
    def speed_factor(self) -> float:
        return float(self.speed.currentData())

    def set_speed(self, speed: float) -> None:
        """Choose one of :data:`SPEEDS` (as the speed box does)."""
        self.speed.setCurrentIndex(SPEEDS.index(speed))

    def play(self) -> None:
        """Play from the current time (from the start when at the end)."""
        if self.record is None or self.playing:
            return
        if self.position_s >= self.duration_s:
            self.seek(0.0)
        self._anchor = (self.clock(), self.position_s)
        self.timer.start()
        self.play_button.setText("Pause")

    def pause(self) -> None:
        if self.playing:
            self._tick()
        self.timer.stop()
        self.play_button.setText("Play")

    def toggle(self) -> None:
        if self.playing:
            self.pause()
        else:
            self.play()

    def _speed_chosen(self) -> None:
        if self.playing:  # keep the shown time, continue at the new speed
            self._anchor = (self.clock(), self.position_s)

    def _tick(self) -> None:
        wall0, start = self._anchor
        position = start + (self.clock() - wall0) * self.speed_factor
        if position >= self.duration_s:
            self.timer.stop()
            self.play_button.setText("Play")
            self._show(self.duration_s)
            self.finished.emit()
            return
        self._show(position)

    def seek(self, t_s: float) -> None:
        """Show session time ``t_s`` (s, clamped to the session); playback continues from there."""
        if self.record is None:
            return
        position = min(max(float(t_s), 0.0), self.duration_s)
        if self.playing:
            self._anchor = (self.clock(), position)
        self._show(position)

    def _slider_moved(self, value: int) -> None:
        if not self._moving_slider:
            self.seek(value / SLIDER_STEPS_PER_S)

    # --- what is shown ----------------------------------------------------------------------------------
    def _show(self, position: float) -> None:
        from workstation.live.session import state_at

        state = state_at(self.record, position)
        self.state, self.position_s = state, state.t_s
        self._moving_slider = True
        self.slider.setValue(int(round(state.t_s * SLIDER_STEPS_PER_S)))
        self._moving_slider = False
        self.time_label.setText(f"{state.t_s:.2f} / {self.duration_s:.2f} s")
        self._show_numbers(state)
        self._show_tool(state)
        self.position_changed.emit(state.t_s)

    def _clear_numbers(self) -> None:
        for label in self.number_labels.values():
            label.setText("-")
        self.alarm_label.setText("no alarm")
        self.alarm_label.setStyleSheet("")
        self.event_label.setText("")
        self.time_label.setText("-")

    def breached(self, state: Any) -> list[str]:
        """Structures closer than the recorded safety margin at ``state`` (the alarm's cause)."""
        margin = self.record.meta.get("margin_mm")
        names = self.record.meta.get("structure_names", [])
        if margin is None:
            return []
        return [n for n in names if state.numbers.get(f"{n}_distance_mm", np.inf) < float(margin)]

    def _show_numbers(self, state: Any) -> None:
        n, labels = state.numbers, self.number_labels
        for key, array, unit in (("target", "distance_to_target_mm", "mm"), ("lateral", "lateral_deviation_mm", "mm"),
                                 ("angle", "angle_deg", "deg"), ("depth", "depth_mm", "mm")):
            labels[key].setText(f"{n[array]:.1f} {unit}" if array in n else "-")
        distances = {name: n[f"{name}_distance_mm"] for name in self.record.meta.get("structure_names", [])
                     if f"{name}_distance_mm" in n}
        if distances:
            name = min(distances, key=distances.__getitem__)
            labels["nearest"].setText(f"{name} {distances[name]:.1f} mm")
        else:
            labels["nearest"].setText("-")
        if state.alarm:
            cause = ", ".join(self.breached(state)) or "a critical structure"
            self.alarm_label.setText(f"ALARM: margin breached by {cause}")
            self.alarm_label.setStyleSheet(_ALARM_STYLE)
        else:
            self.alarm_label.setText("no alarm")
            self.alarm_label.setStyleSheet("")
        t0 = float(self.record.arrays["t_s"][0])
        self.event_label.setText(_event_text(state.events[-1], t0) if state.events else "")

    def _show_tool(self, state: Any) -> None:
        pose = np.asarray(state.pose, dtype=float)
        tip, axis = pose[:3, 3], pose[:3, 2] / np.linalg.norm(pose[:3, 2])
        meta = self.record.meta
        if "entry_lps" in meta and "target_lps" in meta:
            tail = shown_tail(tip, axis, inserted_tail(tip, axis, meta["entry_lps"], meta["target_lps"]))
        else:
            tail = tip - SHOWN_SHAFT_MM * axis
        self.tool_display.show(tip, tail, state.alarm)


def _event_text(event: dict[str, Any], t0_s: float) -> str:
    """One line for the latest event of the session: its time (s from the first pose), kind and details."""
    details = ", ".join(f"{k} {v}" for k, v in event.items() if k not in ("t_s", "kind"))
    return f"last event at {float(event.get('t_s', 0.0)) - t0_s:.2f} s: {event.get('kind', '?')}" + (
        f" ({details})" if details else "")
