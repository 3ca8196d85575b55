"""The outputs panel: the rehearsal report, fly-through movies, the plan (JSON, signed; OpenIGTLink), session scores.

Every action calls the core function the CLI calls (``twin report``, ``twin render flythrough``,
``twin export-plan``, ``twin send-plan``, ``twin session score``); long work runs as a job (worker thread,
progress dialog with Cancel, errors as one message). Pictures are rendered off-screen by
:mod:`workstation.render`, so these work without the interactive 3D view.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
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

SCORE_COLUMNS = ("Session", "Trajectory", "Entry (mm)", "Target (mm)", "Angle (deg)", "Time (s)", "Breaches",
                 "Breach time (s)", "Nearest structure (mm)")
MOVIE_SIZE = (480, 360)
REPORT_SIZE = (480, 360)


def _number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


class OutputsPanel(QWidget):
    """Report, movie, plan export and send, and the scores of the case's recorded sessions."""

    sent = Signal(list)  # device names sent over OpenIGTLink

    def __init__(self, document: Document, run_job: Callable[..., Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("outputs-panel")
        self.document, self.run_job = document, run_job
        self.last_output: Path | None = None
        layout = QVBoxLayout(self)

        rehearsal = QGroupBox("Rehearsal outputs", self)
        form = QFormLayout(rehearsal)
        self.report_button = QPushButton("Write HTML report...", self, objectName="write-report")
        self.report_button.clicked.connect(lambda: self.write_report())
        form.addRow(self.report_button)
        self.trajectory = QComboBox(self, objectName="outputs-trajectory")
        form.addRow("Trajectory", self.trajectory)
        self.frames = QSpinBox(self, objectName="movie-frames")
        self.frames.setRange(2, 600)
        self.frames.setValue(48)
        form.addRow("Frames", self.frames)
        self.movie_format = QComboBox(self, objectName="movie-format")
        self.movie_format.addItems(("MP4", "GIF"))
        form.addRow("Format", self.movie_format)
        self.movie_button = QPushButton("Fly-through movie...", self, objectName="write-movie")
        self.movie_button.clicked.connect(lambda: self.write_movie())
        form.addRow(self.movie_button)
        layout.addWidget(rehearsal)

        plan_box = QGroupBox("Plan", self)
        plan_form = QFormLayout(plan_box)
        key_row = QHBoxLayout()
        self.key_path = QLineEdit(self, objectName="plan-key")
        self.key_path.setPlaceholderText("site key file (optional: signs the plan)")
        browse = QPushButton("Key...", self, objectName="choose-key")
        browse.clicked.connect(self._choose_key)
        key_row.addWidget(self.key_path)
        key_row.addWidget(browse)
        plan_form.addRow("Signing key", key_row)
        self.export_button = QPushButton("Export plan JSON...", self, objectName="outputs-export-plan")
        self.export_button.clicked.connect(lambda: self.export_plan())
        plan_form.addRow(self.export_button)
        send_row = QHBoxLayout()
        self.address = QLineEdit("127.0.0.1:18944", self, objectName="igtl-address")
        self.send_button = QPushButton("Send plan", self, objectName="send-plan")
        self.send_button.clicked.connect(lambda: self.send_plan())
        send_row.addWidget(self.address)
        send_row.addWidget(self.send_button)
        plan_form.addRow("OpenIGTLink HOST:PORT", send_row)
        self.igtl_status = QLabel("not sent", self, objectName="igtl-status")
        self.igtl_status.setWordWrap(True)
        plan_form.addRow(self.igtl_status)
        layout.addWidget(plan_box)

        sessions = QGroupBox("Recorded sessions (scores against the plan)", self)
        sessions_layout = QVBoxLayout(sessions)
        self.scores = QTableWidget(0, len(SCORE_COLUMNS), self)
        self.scores.setObjectName("session-scores")
        self.scores.setHorizontalHeaderLabels(SCORE_COLUMNS)
        self.scores.verticalHeader().setVisible(False)
        self.scores.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        sessions_layout.addWidget(self.scores)
        self.scores_note = QLabel("", self, objectName="scores-note")
        self.scores_note.setWordWrap(True)
        sessions_layout.addWidget(self.scores_note)
        session_row = QHBoxLayout()
        refresh = QPushButton("Refresh scores", self, objectName="refresh-scores")
        refresh.clicked.connect(self.refresh_scores)
        self.session_report_button = QPushButton("Session report...", self, objectName="session-report")
        self.session_report_button.clicked.connect(lambda: self.write_session_report())
        self.replay_button = QPushButton("Replay movie...", self, objectName="session-movie")
        self.replay_button.clicked.connect(lambda: self.write_session_movie())
        for button in (refresh, self.session_report_button, self.replay_button):
            session_row.addWidget(button)
        sessions_layout.addLayout(session_row)
        layout.addWidget(sessions)
        self.status = QLabel("", self, objectName="outputs-status")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        layout.addStretch(1)

        document.case_changed.connect(self.refresh)
        document.plan_changed.connect(self._refresh_trajectories)
        self.refresh()

    # --- state -----------------------------------------------------------------------------------
    def refresh(self) -> None:
        self._refresh_trajectories()
        self.refresh_scores()

    def _refresh_trajectories(self) -> None:
        case = self.document.case
        names = [t.name for t in case.plan.trajectories] if case is not None else []
        if names != [self.trajectory.itemText(n) for n in range(self.trajectory.count())]:
            current = self.trajectory.currentText()
            self.trajectory.clear()
            self.trajectory.addItems(names)
            if current in names:
                self.trajectory.setCurrentText(current)
        has_case = case is not None
        for button in (self.report_button, self.export_button, self.send_button):
            button.setEnabled(has_case)
        self.movie_button.setEnabled(bool(names))

    def refresh_scores(self, *_: Any) -> None:
        """One row per recorded session of the case (``workstation.live.scoring.score_session``)."""
        from workstation.live.scoring import score_session

        case = self.document.case
        records = case.records_of("session") if case is not None else []
        self.scores.setRowCount(len(records))
        problems = []
        for row, record in enumerate(records):
            try:
                s = score_session(record)
            except Exception as exc:  # an unscorable session is listed with its reason
                problems.append(f"{record.name}: {error_text(exc)}")
                cells = [record.name, str(record.meta.get("trajectory", "")), *["-"] * (len(SCORE_COLUMNS) - 2)]
            else:
                cells = [s.name, s.trajectory, _number(s.entry_deviation_mm), _number(s.target_deviation_mm),
                         _number(s.angle_deg), _number(s.time_taken_s), str(s.breaches),
                         _number(s.breach_duration_s),
                         f"{s.nearest_structure} {_number(s.min_structure_distance_mm, 1)}"
                         if s.nearest_structure else "-"]
            for col, text in enumerate(cells):
                self.scores.setItem(row, col, QTableWidgetItem(text))
        self.scores.resizeColumnsToContents()
        self.session_report_button.setEnabled(bool(records))
        self.replay_button.setEnabled(bool(records))
        self.scores_note.setText("\n".join(problems) if problems else
                                 ("" if records else "no recorded session: record one in the Live panel"))

    def selected_session(self) -> Any:
        """The session record of the selected row (default: the last one), or None."""
        case = self.document.case
        if case is None or self.scores.rowCount() == 0:
            return None
        rows = sorted({index.row() for index in self.scores.selectionModel().selectedIndexes()})
        name = self.scores.item(rows[0] if rows else self.scores.rowCount() - 1, 0).text()
        return case.record("session", name)

    def write_session_report(self, folder: str | Path | None = None) -> dict[str, Path] | None:
        """Scores JSON, timeline plot and HTML of the selected session (``twin session score --report``)."""
        from workstation.live.scoring import write_session_report

        record = self.selected_session()
        if record is None:
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder for the session report")
            if not folder:
                return None
        try:
            written = write_session_report(record, folder)
        except Exception as exc:
            self.status.setText(f"session report not written: {error_text(exc)}")
            show_error(self, "Session report", exc)
            return None
        self.last_output = written["html"]
        self.status.setText(f"wrote session report {written['html']}")
        return written

    def write_session_movie(self, path: str | Path | None = None, *, speed: float = 1.0, fps: float = 10.0) -> Any:
        """Replay the selected session into a movie (``twin session replay``), in a job."""
        from workstation.live.movie import write_session_movie

        case, record = self.document.case, self.selected_session()
        if record is None:
            return None
        suffix = ".mp4" if self.movie_format.currentText() == "MP4" else ".gif"
        if path is None:
            path = self._ask_path("Session replay movie", f"{record.name}{suffix}", f"Movie (*{suffix})")
            if path is None:
                return None
        return self.run_job(f"Replaying {record.name}",
                            lambda progress: write_session_movie(case, record, path, speed=speed, fps=fps,
                                                                 progress=progress),
                            self._done("session movie"))

    def score_row(self, name: str) -> dict[str, str] | None:
        """The table's cells for session ``name`` (by column title)."""
        for row in range(self.scores.rowCount()):
            if self.scores.item(row, 0).text() == name:
                return {title: self.scores.item(row, col).text() for col, title in enumerate(SCORE_COLUMNS)}
        return None

    def _ask_path(self, title: str, default: str, filters: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, title, default, filters)
        return Path(path) if path else None

    def _done(self, what: str) -> Callable[[Any], None]:
        def done(result: Any) -> None:
            self.last_output = Path(result)
            self.status.setText(f"wrote {what} {result}")

        return done

    # --- report and movie -------------------------------------------------------------------------
    def write_report(self, path: str | Path | None = None) -> Any:
        """Write the HTML rehearsal report (``twin report``) in a job; the job, or None."""
        from workstation.report.html_report import write_report

        case = self.document.case
        if case is None:
            return None
        path = Path(path) if path else self._ask_path("Write report", f"{case.name}-report.html", "HTML (*.html)")
        if path is None:
            return None
        return self.run_job(f"Report {path.name}",
                            lambda progress: write_report(case, path, progress=progress, size=REPORT_SIZE),
                            self._done("report"))

    def write_movie(self, path: str | Path | None = None) -> Any:
        """A fly-through down the chosen trajectory (``twin render flythrough``) as MP4 or GIF, in a job."""
        from workstation.render.animation import camera_frames, check_movie_path
        from workstation.render.animation import write_movie as write_frames
        from workstation.render.cameras import find_trajectory, trajectory_flythrough
        from workstation.render.case_scene import SceneOptions, build_case_scene

        case = self.document.case
        name = self.trajectory.currentText()
        if case is None or not name:
            return None
        suffix = ".mp4" if self.movie_format.currentText() == "MP4" else ".gif"
        if path is None:
            path = self._ask_path("Fly-through movie", f"{case.name}-{name}{suffix}", f"Movie (*{suffix})")
            if path is None:
                return None
        try:
            path = check_movie_path(path)
            trajectory = find_trajectory(case.plan.trajectories, name)
        except Exception as exc:
            show_error(self, "Fly-through movie", exc)
            return None
        poses = trajectory_flythrough(trajectory, self.frames.value())

        def work(progress: Any) -> Path:
            with build_case_scene(case, SceneOptions(hide_tools=(name,)), size=MOVIE_SIZE,
                                  progress=progress) as scene:
                return write_frames(camera_frames(scene, poses, progress=progress), path, fps=12.0)

        return self.run_job(f"Fly-through {path.name}", work, self._done("movie"))

    # --- plan ---------------------------------------------------------------------------------------
    def _choose_key(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Site key file", "", "All files (*)")
        if path:
            self.key_path.setText(path)

    def _key(self) -> bytes | None:
        from workstation.export.plan_json import load_site_key

        text = self.key_path.text().strip()
        return load_site_key(text) if text else None

    def _document(self) -> dict[str, Any]:
        from workstation.export.plan_json import build_plan_document, sign_document

        doc = self.document
        document = build_plan_document(doc.case, volume_id=doc.volume.id if doc.volume is not None else None)
        key = self._key()
        return sign_document(document, key) if key is not None else document

    def export_plan(self, path: str | Path | None = None) -> Path | None:
        """Write the schema-checked plan JSON (``twin export-plan``), signed when a key file is given."""
        from workstation.export.plan_json import export_plan

        doc = self.document
        if doc.case is None:
            return None
        path = Path(path) if path else self._ask_path("Export plan JSON", f"{doc.case.name}-plan.json",
                                                      "Plan JSON (*.json)")
        if path is None:
            return None
        try:
            document = export_plan(doc.case, path, key=self._key(),
                                   volume_id=doc.volume.id if doc.volume is not None else None)
        except Exception as exc:  # bad key file, unwritable folder...: one message
            self.status.setText(f"plan not exported: {error_text(exc)}")
            show_error(self, "Export plan", exc)
            return None
        signed = f"signed (key_id {document['signature']['key_id']})" if "signature" in document else "unsigned"
        self.last_output = path
        self.status.setText(f"wrote plan {path}: {len(document['trajectories'])} trajectories, {signed}")
        return path

    def send_plan(self, address: str | None = None) -> Any:
        """Send the plan (STRING with the JSON, TRANSFORM and POINT per trajectory) to HOST:PORT in a job."""
        from workstation.export.igtl import parse_address
        from workstation.export.igtl import send_plan as send

        if self.document.case is None:
            return None
        text = (address or self.address.text()).strip()
        try:
            host, port = parse_address(text, option="OpenIGTLink address")
            document = self._document()
        except Exception as exc:
            self.igtl_status.setText(f"not sent: {error_text(exc)}")
            self.igtl_status.setStyleSheet("color: #f44;")
            return None
        self.igtl_status.setText(f"connecting to {host}:{port} ...")
        self.igtl_status.setStyleSheet("color: #bbb;")

        def done(names: list[str]) -> None:
            self.igtl_status.setText(f"sent {len(names)} messages to {host}:{port}: {', '.join(names)}")
            self.igtl_status.setStyleSheet("color: #4c4;")
            self.sent.emit(list(names))

        job = self.run_job(f"Sending the plan to {host}:{port}",
                           lambda progress: send(document, host, port, timeout_s=5.0), done)

        def failed(exc: BaseException) -> None:
            self.igtl_status.setText(f"not sent: {error_text(exc)}")
            self.igtl_status.setStyleSheet("color: #f44;")

        job.failed.connect(failed)
        return job
