"""Random access into a recorded session (``state_at``, the app's time slider) agrees with the headless replay."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from workstation.errors import InputError
from workstation.live.session import replay, session_duration_s, state_at
from workstation.model import Record


def session(t0_s: float = 0.5) -> Record:
    """11 poses 0.1 s apart starting at ``t0_s``; the tip moves 1 mm per pose along z; alarm on poses 4..6;
    events at the start, mid-way and 0.3 s after the last pose (which lengthens the replay)."""
    t = t0_s + 0.1 * np.arange(11)
    pose = np.tile(np.eye(4), (11, 1, 1))
    pose[:, 2, 3] = np.arange(11.0)
    alarm = np.zeros(11, dtype=np.uint8)
    alarm[4:7] = 1
    arrays = {"t_s": t, "pose": pose, "depth_mm": np.arange(11.0), "lateral_deviation_mm": np.full(11, 2.0),
              "structure_distance_mm": np.linspace(5.0, -5.0, 11)[:, None], "alarm": alarm}
    events = [{"t_s": t0_s, "kind": "user_action", "action": "start_recording"},
              {"t_s": t0_s + 0.45, "kind": "simulation", "force_n": 2.0},
              {"t_s": t0_s + 1.3, "kind": "user_action", "action": "stop_recording"}]
    return Record(kind="session", name="s", arrays=arrays,
                  meta={"structure_names": ["aorta"], "events": events, "margin_mm": 2.0})


def test_state_at_agrees_with_every_replayed_frame() -> None:
    record = session()
    assert session_duration_s(record) == pytest.approx(1.3)
    states = list(replay(record, speed=1.0, fps=20.0))
    assert len(states) == 27
    for state in states:
        at = state_at(record, state.t_s)
        assert at.t_s == pytest.approx(state.t_s)
        assert at.index == state.index and at.alarm == state.alarm and at.numbers == state.numbers
        np.testing.assert_array_equal(at.pose, state.pose)
    # the events between two replayed frames are the ones the replay reported at the later frame
    for before, state in pairwise(states):
        assert state_at(record, state.t_s, since_s=before.t_s).events == state.events


def test_state_at_known_times_and_clamping() -> None:
    record = session()
    mid = state_at(record, 0.45)
    assert mid.index == 4 and mid.alarm and mid.pose[2, 3] == 4.0
    assert mid.numbers == {"depth_mm": 4.0, "lateral_deviation_mm": 2.0, "aorta_distance_mm": 1.0}
    assert [e["kind"] for e in mid.events] == ["user_action", "simulation"]
    assert state_at(record, -3.0).t_s == 0.0 and state_at(record, -3.0).index == 0
    end = state_at(record, 99.0)
    assert end.t_s == pytest.approx(1.3) and end.index == 10 and len(end.events) == 3


def test_state_at_refuses_an_empty_or_broken_session() -> None:
    empty = Record(kind="session", name="e", arrays={"t_s": np.zeros(0), "pose": np.zeros((0, 4, 4))})
    with pytest.raises(InputError, match="no pose recorded"):
        state_at(empty, 0.0)
    with pytest.raises(InputError, match="not a session"):
        state_at(Record(kind="camera", name="c"), 0.0)
