"""The live panel driven like a user: listen, stream the simulated tracker over loopback, read the numbers."""

from __future__ import annotations

import socket
import threading
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.ui.helpers import pixel_rgb, point, wait_idle, window_with
from tests.workstation.live.phantom import AORTA_CENTER, AORTA_RADIUS, TOOL_DIAMETER, phantom_case
from workstation.live.igtl_stream import stream_poses
from workstation.live.tracker_sim import simulate_execution
from workstation.model import Volume


def phantom_with_volume() -> Any:
    """The live phantom (trajectory t1 along +z from the origin, aorta beside it) with a CT to slice."""
    case = phantom_case()
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = (-60.0, -60.0, -20.0)
    case.add_volume(Volume(array=np.full((40, 30, 30), -50, dtype=np.int16), ijk_to_lps=affine, modality="CT",
                           name="phantom"))
    return case


def stream(panel: Any, *, offset_mm: tuple[float, float, float], noise_mm: float = 0.2,
           duration_s: float = 1.0) -> threading.Thread:
    case = panel.document.case
    execution = simulate_execution(case.plan.trajectories[0], rate_hz=60, duration_s=duration_s, noise_mm=noise_mm,
                                   offset_mm=offset_mm, seed=1)
    thread = threading.Thread(target=stream_poses, args=(execution.poses,),
                              kwargs={"host": "127.0.0.1", "port": panel.listening_port, "rate_hz": 60}, daemon=True)
    thread.start()
    return thread


def listen(qtbot: Any, window: Any, panel: Any, port: int | None = None) -> None:
    """Start listening like the Listen button (the twin is prepared in a job) and wait for the outcome."""
    panel.start_listening(port)
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: panel.receiver is not None or panel.status == "error", timeout=10000)


@pytest.fixture
def live(qtbot: Any) -> Any:
    window = window_with(qtbot)
    window.document.set_case(phantom_with_volume())
    assert not window.live_dock.isVisible()  # shown from the Live menu
    window.findChild(QAction, "show-live").trigger()
    assert window.live_dock.isVisible()
    panel = window.live_panel
    panel.port.setValue(0)  # any free port
    yield window, panel
    panel.stop_listening()


def test_live_numbers_tool_overlay_and_recorded_session(qtbot: Any, live: Any) -> None:
    window, panel = live
    assert panel.trajectory.currentText() == "t1"
    qtbot.mouseClick(panel.listen_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert panel.listening_port and panel.listening_port > 0
    assert "listening" in panel.status_label.text()
    panel.record_name.setText("trainee_1")
    panel.record_button.click()
    thread = stream(panel, offset_mm=(3.0, 0.0, 0.0))
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10000)
    qtbot.waitUntil(lambda: panel.state is not None and panel.state.depth_mm > 99.0, timeout=5000)
    assert "connected" in panel.status_label.text() or "disconnected" in panel.status_label.text()
    # at rest on the target with a known 3 mm lateral offset (noise SD 0.2 mm per coordinate)
    lateral = float(panel.number_labels["lateral"].text().split()[0])
    target = float(panel.number_labels["target"].text().split()[0])
    angle = float(panel.number_labels["angle"].text().split()[0])
    assert lateral == pytest.approx(3.0, abs=0.8)
    assert target == pytest.approx(3.0, abs=0.8)
    assert angle == pytest.approx(0.0, abs=0.05)  # the simulator keeps the axis noise-free
    # the aorta (radius 10 at x=20) seen from the tool (radius 1 at x~3): ~6 mm, outside the 2 mm margin
    assert panel.structures.rowCount() == 1 and panel.structures.item(0, 0).text() == "aorta"
    expected = AORTA_CENTER[0] - 3.0 - AORTA_RADIUS - TOOL_DIAMETER / 2
    assert float(panel.structures.item(0, 1).text()) == pytest.approx(expected, abs=0.8)
    assert not panel.alarm and panel.alarm_label.text() == "no alarm"

    # the tool is drawn over the coronal slice at the tip (green: no alarm)
    view = window.views["coronal"]
    window.document.set_crosshair(panel.state.tip_lps)
    QApplication.processEvents()
    tip = view.widget_pos_of(panel.state.tip_lps)
    overlay = next(o for o in panel.overlays if o.view is view)
    red, green, blue = pixel_rgb(view, point(tip))
    assert green > 200 and red < 80 and blue < 80, (red, green, blue)
    assert overlay.tip is not None

    panel.stop_record_button.click()
    record = window.document.case.record("session", "trainee_1")
    assert record.meta["n_poses"] >= 55
    assert record.arrays["pose"].shape == (record.meta["n_poses"], 4, 4)
    assert np.median(record.arrays["lateral_deviation_mm"][-5:]) == pytest.approx(3.0, abs=0.8)
    assert window.document.modified
    row = window.outputs_panel.score_row("trainee_1")  # the scores table follows the recording
    assert row is not None and row["Breaches"] == "0"
    assert float(row["Target (mm)"]) == pytest.approx(3.0, abs=0.8)


def test_recording_without_poses_is_refused_with_a_message(qtbot: Any, live: Any) -> None:
    window, panel = live
    listen(qtbot, window, panel)
    panel.record_button.click()
    assert panel.stop_record_button.isEnabled() and not panel.record_button.isEnabled()
    assert panel.stop_recording() is None
    assert window.document.case.records_of("session") == []
    box = window.findChild(QMessageBox, "error-box")
    assert box is not None and "no pose received" in box.text()


def test_alarm_when_the_tool_passes_within_the_margin(qtbot: Any, live: Any) -> None:
    window, panel = live
    listen(qtbot, window, panel)
    thread = stream(panel, offset_mm=(8.0, 0.0, 0.0), noise_mm=0.0)  # 20 - 8 - 10 - 1 = 1 mm < 2 mm margin
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10000)
    qtbot.waitUntil(lambda: panel.state is not None and panel.state.depth_mm > 99.0, timeout=5000)
    assert panel.alarm
    assert "ALARM" in panel.alarm_label.text() and "aorta" in panel.alarm_label.text()
    assert "#d00" in panel.alarm_label.styleSheet()
    assert float(panel.structures.item(0, 1).text()) == pytest.approx(1.0, abs=0.6)
    overlay = panel.overlays[0]
    assert overlay.alarm


def test_malformed_stream_shows_an_error_and_keeps_listening(qtbot: Any, live: Any) -> None:
    window, panel = live
    listen(qtbot, window, panel)
    with socket.create_connection(("127.0.0.1", panel.listening_port), timeout=2.0) as sock:
        sock.sendall(b"\x07garbage that is not OpenIGTLink at all" * 4)
    qtbot.waitUntil(lambda: panel.status == "error", timeout=5000)
    assert "malformed" in panel.status_label.text()
    # the panel still listens and a good client afterwards is measured
    thread = stream(panel, offset_mm=(0.0, 0.0, 0.0), noise_mm=0.0, duration_s=0.5)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=10000)
    qtbot.waitUntil(lambda: panel.state is not None and panel.state.depth_mm > 99.0, timeout=5000)
    assert float(panel.number_labels["lateral"].text().split()[0]) == pytest.approx(0.0, abs=0.1)


def test_a_taken_port_is_reported_not_raised(qtbot: Any, live: Any) -> None:
    window, panel = live
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        listen(qtbot, window, panel, taken.getsockname()[1])
    assert panel.status == "error" and "cannot listen" in panel.status_label.text()
    assert panel.listen_button.isEnabled()
