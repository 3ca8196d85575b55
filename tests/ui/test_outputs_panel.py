"""The outputs panel driven like a user: report, fly-through movie, signed plan, plan over OpenIGTLink, scores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from tests.conftest import free_port
from tests.ui.helpers import wait_idle, window_with
from tests.ui.test_live_panel import phantom_with_volume
from workstation.export.plan_json import verify_plan
from workstation.live.live_twin import LiveTwin
from workstation.live.session import SessionRecorder
from workstation.live.tracker_sim import expected_deviations, simulate_execution

KEY = bytes(range(7, 47))


@pytest.fixture
def outputs(qtbot: Any) -> Any:
    window = window_with(qtbot)
    window.document.set_case(phantom_with_volume())
    window.findChild(QAction, "show-outputs").trigger()
    assert window.outputs_dock.isVisible()
    return window, window.outputs_panel


def test_report_has_embedded_pictures(qtbot: Any, outputs: Any, tmp_path: Path) -> None:
    window, panel = outputs
    job = panel.write_report(tmp_path / "report.html")
    assert job is not None
    wait_idle(qtbot, window, 60000)
    assert job.error is None, job.error
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 1
    assert "t1" in html  # the planned trajectory is listed
    assert "wrote report" in panel.status.text()


def test_flythrough_gif_has_the_frames(qtbot: Any, outputs: Any, tmp_path: Path) -> None:
    import imageio.v2 as imageio

    window, panel = outputs
    assert panel.trajectory.currentText() == "t1"
    panel.frames.setValue(6)
    panel.movie_format.setCurrentText("GIF")
    job = panel.write_movie(tmp_path / "fly.gif")
    wait_idle(qtbot, window, 60000)
    assert job.error is None, job.error
    frames = imageio.mimread(tmp_path / "fly.gif")
    assert len(frames) == 6
    first = np.asarray(frames[0])
    assert first.shape[:2] == (360, 480) and first.std() > 1.0  # a picture, not a blank frame


def test_flythrough_mp4_can_be_cancelled_and_then_written(qtbot: Any, outputs: Any, tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as imageio

    window, panel = outputs
    panel.frames.setValue(300)
    job = panel.write_movie(tmp_path / "cancelled.mp4")
    job.cancel()
    wait_idle(qtbot, window, 60000)
    assert job.error is not None and type(job.error).__name__ == "CancelledError"
    assert not (tmp_path / "cancelled.mp4").exists()  # atomic: nothing half-written
    panel.frames.setValue(8)
    job = panel.write_movie(tmp_path / "fly.mp4")
    wait_idle(qtbot, window, 60000)
    assert job.error is None, job.error
    reader = imageio.get_reader(tmp_path / "fly.mp4")
    assert sum(1 for _ in reader) == 8
    reader.close()


def test_plan_export_signed_and_unsigned(qtbot: Any, outputs: Any, tmp_path: Path) -> None:
    _window, panel = outputs
    plain = panel.export_plan(tmp_path / "plan.json")
    assert plain is not None and verify_plan(plain).verified
    key_file = tmp_path / "site.key"
    key_file.write_bytes(KEY)
    panel.key_path.setText(str(key_file))
    signed = panel.export_plan(tmp_path / "signed.json")
    result = verify_plan(signed, KEY)
    assert result.verified and result.signature == "valid"
    assert not verify_plan(signed, bytes(range(100, 140))).verified  # another site's key
    assert "signed (key_id" in panel.status.text()
    key_file.write_bytes(b"short")  # a bad key file is one message, no file written
    assert panel.export_plan(tmp_path / "bad.json") is None
    assert not (tmp_path / "bad.json").exists()
    assert "at least" in panel.status.text()


def test_send_plan_over_openigtlink(qtbot: Any, outputs: Any, tmp_path: Path, igtl_server: Any) -> None:
    window, panel = outputs
    key_file = tmp_path / "site.key"
    key_file.write_bytes(KEY)
    panel.key_path.setText(str(key_file))
    panel.address.setText(f"127.0.0.1:{igtl_server.port}")
    qtbot.mouseClick(panel.send_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window, 20000)
    assert panel.igtl_status.text().startswith("sent ") and "PLAN" in panel.igtl_status.text()
    message = igtl_server.wait_for_message("PLAN", timeout=10)
    assert message is not None
    received = json.loads(message.string)
    assert verify_plan(received, KEY).verified
    assert [t["name"] for t in received["trajectories"]] == ["t1", "t2"]


def test_send_plan_to_nobody_shows_the_error(qtbot: Any, outputs: Any) -> None:
    window, panel = outputs
    panel.address.setText(f"127.0.0.1:{free_port()}")
    job = panel.send_plan()
    wait_idle(qtbot, window, 20000)
    assert job.error is not None
    assert panel.igtl_status.text().startswith("not sent:") and "nothing listens" in panel.igtl_status.text()
    panel.address.setText("no-port-here")
    assert panel.send_plan() is None
    assert "not sent" in panel.igtl_status.text()


def test_session_scores_report_and_replay_of_a_known_execution(qtbot: Any, outputs: Any, tmp_path: Path) -> None:
    window, panel = outputs
    case = window.document.case
    trajectory = case.plan.trajectories[0]
    execution = simulate_execution(trajectory, rate_hz=60, duration_s=2.0, angle_deg=3.0, offset_mm=(0.0, 2.0, 0.0),
                                   noise_mm=0.1, seed=3)
    twin = LiveTwin(case, trajectory="t1", margin_mm=2.0)
    recorder = SessionRecorder(plan=twin.describe(), structure_names=twin.structure_names)
    for t, pose in zip(execution.t_s, execution.poses, strict=True):
        recorder.add_pose(float(t), pose, pose, twin.update(pose))
    case.add_record(recorder.to_record("known"))
    assert panel.score_row("known") is None
    qtbot.mouseClick(panel.findChild(type(panel.report_button), "refresh-scores"), Qt.MouseButton.LeftButton)
    row = panel.score_row("known")
    expected = expected_deviations(trajectory, execution)
    assert float(row["Angle (deg)"]) == pytest.approx(expected["angle_deg"], abs=0.2)
    assert float(row["Entry (mm)"]) == pytest.approx(expected["entry_deviation_mm"], abs=0.3)
    assert float(row["Target (mm)"]) == pytest.approx(expected["target_deviation_mm"], abs=0.3)
    assert float(row["Time (s)"]) == pytest.approx(expected["time_taken_s"], abs=0.15)
    assert row["Breaches"] == "0" and row["Nearest structure (mm)"].startswith("aorta")

    written = panel.write_session_report(tmp_path)
    assert written["html"].is_file() and written["png"].stat().st_size > 1000
    assert json.loads(written["json"].read_text())["breaches"] == 0
    job = panel.write_session_movie(tmp_path / "replay.gif", speed=4.0, fps=5.0)
    wait_idle(qtbot, window, 60000)
    assert job.error is None, job.error
    import imageio.v2 as imageio

    assert len(imageio.mimread(tmp_path / "replay.gif")) >= 3  # 2 s replayed at x4, 5 fps
