"""The replay panel driven like a user: pick a recorded session, play it at 4x, pause, scrub, read the numbers.

The session is recorded with the core (the live twin measuring a simulated execution, no network): the tool
goes along trajectory t1 ((0, 0, 0) -> (0, 0, 100)) with a known 8 mm lateral offset, which brings it within
the 2 mm safety margin of the aorta mid-way (alarm on), over 4 s recorded at 30 Hz.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication

from tests.ui.helpers import pixel_rgb, point, window_with
from tests.ui.test_live_panel import phantom_with_volume
from workstation.live.live_twin import LiveTwin
from workstation.live.session import SessionRecorder, replay
from workstation.live.tracker_sim import simulate_execution
from workstation.model import Record

DURATION_S = 4.0
OFFSET_MM = (8.0, 0.0, 0.0)  # tool surface 20 - 8 - 10 - 1 = 1 mm from the aorta at its depth: alarm


def record_session(case: Any, name: str) -> Record:
    """A session as the live panel records it: each simulated pose measured by the live twin."""
    twin = LiveTwin(case, trajectory="t1", margin_mm=2.0)
    execution = simulate_execution(case.plan.trajectories[0], rate_hz=30, duration_s=DURATION_S, noise_mm=0.0,
                                   offset_mm=OFFSET_MM)
    recorder = SessionRecorder(plan=twin.describe(), structure_names=twin.structure_names)
    recorder.add_event(0.0, "user_action", action="start_recording")
    for t, pose in zip(execution.t_s, execution.poses, strict=True):
        recorder.add_pose(float(t), pose, pose, twin.update_image(pose))
    recorder.add_event(1.0, "simulation", force_n=1.5)
    return recorder.to_record(name)


@pytest.fixture(scope="module")
def session() -> Record:
    return record_session(phantom_with_volume(), "trainee_1")


@pytest.fixture
def replaying(qtbot: Any, session: Record) -> Any:
    window = window_with(qtbot)
    case = phantom_with_volume()
    case.add_record(session)
    window.document.set_case(case)
    assert not window.replay_dock.isVisible()  # shown from the Live menu
    window.findChild(QAction, "show-replay").trigger()
    assert window.replay_dock.isVisible()
    panel = window.replay_panel
    assert panel.session.currentText() == "trainee_1"
    yield window, panel
    panel.pause()


def tool_pixel(window: Any, panel: Any, tip_lps: np.ndarray) -> tuple[int, int, int]:
    """Colour at ``tip_lps`` in the coronal view (its slice through the tip)."""
    view = window.views["coronal"]
    window.document.set_crosshair(tip_lps)
    QApplication.processEvents()
    return pixel_rgb(view, point(view.widget_pos_of(tip_lps)))


def test_replay_at_4x_takes_a_quarter_of_the_recorded_time(qtbot: Any, replaying: Any) -> None:
    _window, panel = replaying
    assert panel.duration_s == pytest.approx(DURATION_S)
    panel.speed.setCurrentIndex(panel.speed.findText("4x"))
    assert panel.speed_factor == 4.0
    shown: list[float] = []
    panel.position_changed.connect(shown.append)
    with qtbot.waitSignal(panel.finished, timeout=15000):
        start = time.monotonic()
        panel.play_button.click()
        assert panel.playing and panel.play_button.text() == "Pause"
    elapsed = time.monotonic() - start
    # 4 s recorded at 4x: 1 s; a loaded machine only delays the last tick, never makes it earlier
    assert 0.95 <= elapsed <= 3.0, elapsed
    assert not panel.playing and panel.play_button.text() == "Play"
    assert len(shown) >= 8 and np.all(np.diff(shown) >= 0)  # the timer advanced it step by step
    assert shown[-1] == pytest.approx(DURATION_S)
    assert panel.slider.value() == panel.slider.maximum() == 4000
    assert panel.state.index == len(panel.record.arrays["t_s"]) - 1
    assert float(panel.number_labels["depth"].text().split()[0]) == pytest.approx(100.0, abs=0.05)


def test_pause_stops_advancing_and_play_resumes(qtbot: Any, replaying: Any) -> None:
    _window, panel = replaying
    panel.play_button.click()
    qtbot.waitUntil(lambda: panel.position_s > 0.2, timeout=5000)
    panel.play_button.click()  # pause
    assert not panel.playing and panel.play_button.text() == "Play"
    paused, slider = panel.position_s, panel.slider.value()
    assert 0.2 < paused < DURATION_S
    qtbot.wait(400)
    assert panel.position_s == paused and panel.slider.value() == slider
    panel.play_button.click()
    qtbot.waitUntil(lambda: panel.position_s > paused + 0.1, timeout=5000)
    assert panel.playing


def test_scrubbing_shows_the_recorded_pose_and_numbers(qtbot: Any, replaying: Any, session: Record) -> None:
    window, panel = replaying
    a = session.arrays
    # mid-way (t = 2 s): the tip at depth 50 beside the aorta, alarm on
    panel.slider.setValue(2000)
    i = int(np.searchsorted(a["t_s"], 2.0 + 1e-9, side="right") - 1)
    assert panel.position_s == pytest.approx(2.0) and panel.state.index == i
    tip = a["pose"][i][:3, 3]
    np.testing.assert_allclose(tip, [8.0, 0.0, 50.0], atol=1e-6)
    assert panel.number_labels["target"].text() == f"{a['distance_to_target_mm'][i]:.1f} mm"
    assert panel.number_labels["lateral"].text() == f"{a['lateral_deviation_mm'][i]:.1f} mm" == "8.0 mm"
    assert panel.number_labels["angle"].text() == f"{a['angle_deg'][i]:.1f} deg" == "0.0 deg"
    assert panel.number_labels["depth"].text() == "50.0 mm"
    assert panel.number_labels["nearest"].text() == f"aorta {a['structure_distance_mm'][i, 0]:.1f} mm"
    assert a["alarm"][i] == 1 and "ALARM" in panel.alarm_label.text() and "aorta" in panel.alarm_label.text()
    alarm_on = next(e for e in session.meta["events"] if e["kind"] == "alarm_on")
    assert 1.0 < alarm_on["t_s"] <= 2.0
    assert panel.event_label.text().startswith(f"last event at {alarm_on['t_s']:.2f} s: alarm_on")
    assert panel.time_label.text() == "2.00 / 4.00 s"
    red, green, blue = tool_pixel(window, panel, tip)
    assert red > 200 and green < 80 and blue < 80, (red, green, blue)  # red: the recorded alarm

    # back to the entry (t = 0.2 s): amber tool at (8, 0, 0), nothing drawn at depth 50 any more, no alarm
    panel.slider.setValue(200)
    j = int(np.searchsorted(a["t_s"], 0.2 + 1e-9, side="right") - 1)
    assert panel.state.index == j and a["alarm"][j] == 0
    assert panel.alarm_label.text() == "no alarm" and panel.number_labels["depth"].text() == "0.0 mm"
    assert panel.event_label.text() == "last event at 0.00 s: user_action (action start_recording)"
    panel.slider.setValue(1200)  # after the simulation event, before the alarm
    assert panel.event_label.text() == "last event at 1.00 s: simulation (force_n 1.5)"
    panel.slider.setValue(200)
    red, green, blue = tool_pixel(window, panel, a["pose"][j][:3, 3])
    assert red > 200 and 120 < green < 230 and blue < 80, (red, green, blue)
    red, green, blue = tool_pixel(window, panel, tip)
    assert max(red, green, blue) - min(red, green, blue) < 20, (red, green, blue)  # grey CT, no tool


def test_numbers_match_the_headless_replay(qtbot: Any, replaying: Any, session: Record) -> None:
    _window, panel = replaying
    states = list(replay(session, speed=1.0, fps=5.0))
    assert len(states) == 21
    for state in states[::3]:
        panel.seek(state.t_s)
        assert panel.state.index == state.index
        assert panel.state.numbers == state.numbers and panel.state.alarm == state.alarm
        assert panel.number_labels["lateral"].text() == f"{state.numbers['lateral_deviation_mm']:.1f} mm"
        assert panel.number_labels["target"].text() == f"{state.numbers['distance_to_target_mm']:.1f} mm"
        np.testing.assert_array_equal(panel.overlays[0].tip, state.pose[:3, 3])


def test_new_sessions_are_listed_and_a_case_without_any_says_so(qtbot: Any, session: Record) -> None:
    window = window_with(qtbot)
    case = phantom_with_volume()
    window.document.set_case(case)
    panel = window.replay_panel
    assert panel.session.count() == 0 and not panel.play_button.isEnabled()
    assert "no recorded session" in panel.status_label.text()
    panel.play()  # nothing to play: no error, nothing runs
    assert not panel.playing
    case.add_record(Record(kind="session", name="rehearsal", meta=dict(session.meta), arrays=session.arrays))
    window.live_panel.session_recorded.emit("rehearsal")  # as when the live panel records one
    assert panel.session.currentText() == "rehearsal" and panel.play_button.isEnabled()
    assert panel.time_label.text() == "0.00 / 4.00 s"
    assert panel.overlays[0].tip is not None
    window.document.set_case(phantom_with_volume())  # another case: the tool goes away
    assert panel.session.count() == 0 and panel.overlays[0].tip is None


def test_every_speed_advances_session_time_by_wall_time_times_speed(qtbot: Any, session: Record) -> None:
    """The pacing with a controlled clock: each timer tick shows start + elapsed x speed, whatever the load."""
    from ui.document import Document
    from ui.replay_panel import SPEEDS, ReplayPanel

    now = [100.0]
    document = Document()
    case = phantom_with_volume()
    case.add_record(session)
    document.set_case(case)
    panel = ReplayPanel(document, clock=lambda: now[0])
    qtbot.addWidget(panel)
    assert [panel.speed.itemText(n) for n in range(panel.speed.count())] == ["0.25x", "0.5x", "1x", "2x", "4x", "8x"]
    for speed in SPEEDS:
        panel.seek(0.0)
        panel.set_speed(speed)
        panel.play()
        now[0] += 0.4
        qtbot.waitUntil(lambda: panel.position_s > 0, timeout=2000)
        assert panel.position_s == pytest.approx(min(0.4 * speed, DURATION_S))
        panel.pause()
    panel.seek(1.0)
    panel.set_speed(2.0)
    panel.play()
    now[0] += 0.25
    qtbot.waitUntil(lambda: panel.position_s > 1.0, timeout=2000)
    assert panel.position_s == pytest.approx(1.5)
    panel.set_speed(0.5)  # a new speed while playing continues from the time shown
    now[0] += 1.0
    qtbot.waitUntil(lambda: panel.position_s > 1.5, timeout=2000)
    assert panel.position_s == pytest.approx(2.0)
    now[0] += 10.0
    qtbot.waitUntil(lambda: not panel.playing, timeout=2000)
    assert panel.position_s == pytest.approx(DURATION_S)
