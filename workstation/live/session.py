"""Recorded sessions: timestamped tool poses, the twin's numbers, alarms and events, in a case record.

A session is a ``Record(kind="session")`` whose arrays are (T = number of poses, S = critical structures):

``t_s`` (T,) seconds since the session started (pose arrival time), ``pose`` (T, 4, 4) tool pose in image
LPS, ``pose_tracker`` (T, 4, 4) the pose as received (tracker frame), ``distance_to_target_mm``,
``lateral_deviation_mm``, ``angle_deg``, ``depth_mm`` (T,), ``structure_distance_mm`` (T, S) signed distance
of the tool cylinder to each critical surface, ``alarm`` (T,) 0/1, ``latency_ms`` (T,) from message arrival
to updated numbers, ``sequence`` (T,) sender message numbers (-1 when unnumbered), ``sent_time_s`` (T,) the
sender's time stamps (its clock, seconds since 1970; NaN when unknown).

Its meta holds the plan it was measured against (``trajectory``, ``entry_lps``, ``target_lps``,
``margin_mm``, ``critical_structures``...), stream counters and ``events``: a list of
``{"t_s": ..., "kind": ..., ...}`` with kinds ``stream`` (connected/disconnected/malformed), ``alarm_on``/
``alarm_off`` (with ``structures``), ``user_action``, ``camera`` and ``simulation`` (e.g. ``force_n``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from workstation.errors import InputError
from workstation.live.live_twin import LiveState
from workstation.model import Record

SESSION_ARRAYS = ("t_s", "pose", "pose_tracker", "distance_to_target_mm", "lateral_deviation_mm", "angle_deg",
                  "depth_mm", "structure_distance_mm", "alarm", "latency_ms", "sequence", "sent_time_s")
EVENT_KINDS = ("stream", "alarm_on", "alarm_off", "user_action", "camera", "simulation")


class SessionRecorder:
    """Collects poses, numbers and events of one session; :meth:`to_record` makes the case record.

    ``plan`` is the JSON-ready description of what the numbers are measured against
    (:meth:`workstation.live.live_twin.LiveTwin.describe`); ``structure_names`` orders the structure columns.
    """

    def __init__(self, *, plan: dict[str, Any], structure_names: tuple[str, ...] = ()) -> None:
        self.plan = dict(plan)
        self.structure_names = tuple(structure_names)
        self.started_utc = datetime.now(UTC).isoformat(timespec="seconds")
        self._rows: dict[str, list[Any]] = {key: [] for key in SESSION_ARRAYS}
        self.events: list[dict[str, Any]] = []
        self.counters: dict[str, int] = {"messages_received": 0, "messages_dropped": 0, "malformed_messages": 0}
        self._alarm: tuple[str, ...] = ()

    @property
    def n_poses(self) -> int:
        return len(self._rows["t_s"])

    def add_event(self, t_s: float, kind: str, **data: Any) -> None:
        """An event at session time ``t_s`` (s); ``data`` must be JSON-serialisable (units in the keys)."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"event kind {kind!r} is not one of {', '.join(EVENT_KINDS)}")
        self.events.append({"t_s": float(t_s), "kind": kind, **data})

    def add_pose(self, t_s: float, pose_tracker: ArrayLike, pose_lps: ArrayLike, state: LiveState, *,
                 latency_ms: float = float("nan"), sequence: int | None = None,
                 sent_time_s: float = float("nan")) -> None:
        """One pose with its numbers; alarm changes become ``alarm_on``/``alarm_off`` events."""
        rows = self._rows
        rows["t_s"].append(float(t_s))
        rows["pose"].append(np.asarray(pose_lps, dtype=float))
        rows["pose_tracker"].append(np.asarray(pose_tracker, dtype=float))
        rows["distance_to_target_mm"].append(state.distance_to_target_mm)
        rows["lateral_deviation_mm"].append(state.lateral_deviation_mm)
        rows["angle_deg"].append(state.angle_deg)
        rows["depth_mm"].append(state.depth_mm)
        rows["structure_distance_mm"].append([state.structure_distances_mm.get(n, np.inf)
                                              for n in self.structure_names])
        rows["alarm"].append(1 if state.alarm else 0)
        rows["latency_ms"].append(float(latency_ms))
        rows["sequence"].append(-1 if sequence is None else int(sequence))
        rows["sent_time_s"].append(float(sent_time_s))
        if state.breached != self._alarm:
            if state.breached:
                self.add_event(t_s, "alarm_on", structures=list(state.breached),
                               min_distance_mm=round(state.min_structure_distance_mm, 3))
            else:
                self.add_event(t_s, "alarm_off", structures=list(self._alarm))
            self._alarm = state.breached

    def arrays(self) -> dict[str, NDArray[Any]]:
        rows = self._rows
        n, s = self.n_poses, len(self.structure_names)
        return {
            "t_s": np.asarray(rows["t_s"], dtype=float).reshape(n),
            "pose": np.asarray(rows["pose"], dtype=float).reshape(n, 4, 4),
            "pose_tracker": np.asarray(rows["pose_tracker"], dtype=float).reshape(n, 4, 4),
            **{key: np.asarray(rows[key], dtype=float).reshape(n) for key in
               ("distance_to_target_mm", "lateral_deviation_mm", "angle_deg", "depth_mm", "latency_ms",
                "sent_time_s")},
            "structure_distance_mm": np.asarray(rows["structure_distance_mm"], dtype=float).reshape(n, s),
            "alarm": np.asarray(rows["alarm"], dtype=np.uint8).reshape(n),
            "sequence": np.asarray(rows["sequence"], dtype=np.int64).reshape(n),
        }

    def to_record(self, name: str) -> Record:
        """The session as a case record (see the module docstring)."""
        arrays = self.arrays()
        t = arrays["t_s"]
        meta = {
            **self.plan,
            "pose_frame": "image_lps",
            "started_utc": self.started_utc,
            "duration_s": float(t[-1] - t[0]) if len(t) else 0.0,
            "n_poses": self.n_poses,
            "structure_names": list(self.structure_names),
            **self.counters,
            "events": [_finite(e) for e in self.events],
            "units": {"t_s": "s", "pose": "mm", "angle_deg": "degrees", "latency_ms": "ms"},
        }
        return Record(kind="session", name=name, meta=meta, arrays=arrays)


def _finite(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become ``None``."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def check_session(record: Record) -> Record:
    """``record`` if it is a session with the arrays replay and scoring need; else :class:`InputError`."""
    if record.kind != "session":
        raise InputError(f"record {record.name!r}: is a {record.kind} record, not a session")
    missing = [key for key in ("t_s", "pose") if key not in record.arrays]
    if missing:
        raise InputError(f"session {record.name!r}: lacks arrays {', '.join(missing)}")
    t, pose = record.arrays["t_s"], record.arrays["pose"]
    if t.ndim != 1 or pose.shape != (len(t), 4, 4):
        raise InputError(f"session {record.name!r}: t_s {t.shape} and pose {pose.shape} do not match")
    if len(t) and np.any(np.diff(t) < 0):
        raise InputError(f"session {record.name!r}: t_s is not increasing")
    return record


@dataclass(frozen=True)
class ReplayState:
    """The session at replay time ``t_s``: the latest pose ``index`` at or before it, its numbers and the
    events that happened since the previous state."""

    t_s: float
    index: int
    pose: NDArray[np.float64]
    numbers: dict[str, float]
    alarm: bool
    events: list[dict[str, Any]] = field(default_factory=list)


def replay(record: Record, *, speed: float = 1.0, fps: float = 30.0, realtime: bool = False,
           sleep: Callable[[float], None] = time.sleep) -> Iterator[ReplayState]:
    """States of a recorded session at ``fps`` output frames per second of wall time, ``speed`` times
    faster than recorded (0.5 = slow motion), from the first pose until the last pose and event are
    passed. With ``realtime`` the generator paces itself on the clock;
    headless use (movies, tests) leaves it off and gets the same states at once."""
    check_session(record)
    if not (speed > 0 and fps > 0):
        raise InputError(f"--speed {speed} / fps {fps}: must be > 0")
    a = record.arrays
    t = a["t_s"]
    if len(t) == 0:
        return
    events = sorted(record.meta.get("events", []), key=lambda e: e.get("t_s", 0.0))
    start = float(t[0])
    end = max([float(t[-1])] + [float(e.get("t_s", 0.0)) for e in events])
    n_frames = int(np.ceil((end - start) * fps / speed - 1e-9)) + 1
    next_event = 0
    wall0 = time.monotonic()
    for k in range(n_frames):
        now = start + k * speed / fps
        if realtime:
            delay = wall0 + k / fps - time.monotonic()
            if delay > 0:
                sleep(delay)
        i = int(np.searchsorted(t, now + 1e-9, side="right") - 1)
        happened = []
        while next_event < len(events) and events[next_event].get("t_s", 0.0) <= now + 1e-9:
            happened.append(events[next_event])
            next_event += 1
        yield _state(record, now - start, i, happened)


NUMBER_ARRAYS = ("distance_to_target_mm", "lateral_deviation_mm", "angle_deg", "depth_mm")


def _state(record: Record, t_s: float, i: int, events: list[dict[str, Any]]) -> ReplayState:
    """The state at session time ``t_s`` showing pose ``i`` (its numbers, per-structure distances, alarm)."""
    a = record.arrays
    numbers = {key: float(a[key][i]) for key in NUMBER_ARRAYS if key in a}
    names = record.meta.get("structure_names", [])
    if "structure_distance_mm" in a and a["structure_distance_mm"].shape[1:] == (len(names),):
        numbers.update({f"{n}_distance_mm": float(v) for n, v in zip(names, a["structure_distance_mm"][i],
                                                                     strict=True)})
    return ReplayState(t_s, i, np.array(a["pose"][i]), numbers, bool(a["alarm"][i]) if "alarm" in a else False,
                       events)


def session_duration_s(record: Record) -> float:
    """Replay length (s) of a session: from its first pose to its last pose or event, whichever is later."""
    t = check_session(record).arrays["t_s"]
    if len(t) == 0:
        return 0.0
    events = [float(e.get("t_s", 0.0)) for e in record.meta.get("events", [])]
    return max([float(t[-1])] + events) - float(t[0])


def state_at(record: Record, t_s: float, *, since_s: float = -np.inf) -> ReplayState:
    """The session at ``t_s`` seconds after its first pose (clamped to ``0 .. session_duration_s``), as
    :func:`replay` yields it at that time, for random access (an app's time slider): the latest pose at or
    before it, its numbers and the events in ``(since_s, t_s]``."""
    duration = session_duration_s(record)
    t = record.arrays["t_s"]
    if len(t) == 0:
        raise InputError(f"session {record.name!r}: no pose recorded, nothing to replay")
    now = min(max(float(t_s), 0.0), duration)
    i = int(np.searchsorted(t, float(t[0]) + now + 1e-9, side="right") - 1)
    events = [e for e in sorted(record.meta.get("events", []), key=lambda e: e.get("t_s", 0.0))
              if since_s + 1e-9 < float(e.get("t_s", 0.0)) - float(t[0]) <= now + 1e-9]
    return _state(record, now, i, events)
