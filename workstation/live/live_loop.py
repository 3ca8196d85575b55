"""The live loop: received poses -> the twin's numbers -> a recorded session (and printed lines headless).

:class:`LiveMonitor` is the non-blocking core (an app calls :meth:`LiveMonitor.poll` from a timer and draws the
latest state); :func:`run_live` is the headless loop of ``twin live`` around it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workstation.live.igtl_stream import PoseMessage, StreamEvent, TransformReceiver
from workstation.live.live_twin import LiveState, LiveTwin
from workstation.live.session import SessionRecorder


@dataclass
class LiveSummary:
    """Counters of a finished live run."""

    poses: int = 0
    dropped: int = 0
    malformed: int = 0
    disconnects: int = 0
    alarms: int = 0
    ignored: int = 0
    latency_ms_median: float = float("nan")
    latency_ms_p95: float = float("nan")
    latency_ms_max: float = float("nan")


class SequenceTracker:
    """Counts messages missing from numbered streams, per client and device (a new client restarts at 0)."""

    def __init__(self) -> None:
        self.expected: dict[tuple[str, str], int] = {}
        self.dropped = 0

    def see(self, sequence: int | None, stream: tuple[str, str] = ("", "")) -> None:
        if sequence is None:
            return
        expected = self.expected.get(stream)
        if expected is not None and sequence > expected:
            self.dropped += sequence - expected
        self.expected[stream] = sequence + 1


class LiveMonitor:
    """Processes every pose the receiver has queued, in order, into the twin's numbers and the recording.

    Stream problems become recorded ``stream`` events and lines for ``out``; they never raise.
    ``on_state`` is called per processed pose; ``print_every_s`` paces the printed state lines. Only the
    tool ``device`` (an OpenIGTLink device name) is followed; ``None`` follows the first device that sends,
    and poses of other devices are counted in ``summary.ignored`` (one ``ignored`` event per device).
    """

    def __init__(self, twin: LiveTwin, receiver: TransformReceiver, recorder: SessionRecorder, *,
                 out: Callable[[str], None] | None = None, print_every_s: float = 0.5,
                 on_state: Callable[[PoseMessage, LiveState], None] | None = None, device: str | None = None) -> None:
        self.twin, self.receiver, self.recorder = twin, receiver, recorder
        self.out, self.print_every_s, self.on_state = out, print_every_s, on_state
        self.start = time.perf_counter()
        self.summary = LiveSummary()
        self.sequences = SequenceTracker()
        self.latencies_ms: list[float] = []
        self.latest: LiveState | None = None
        self.client_left = False  # a client that had sent poses went away
        self.device = device
        self._ignored_devices: set[str] = set()
        self._last_print = -np.inf
        self._alarm_on = False

    def _say(self, text: str) -> None:
        if self.out is not None:
            self.out(text)

    def _event(self, event: StreamEvent) -> None:
        t = event.arrival_s - self.start
        self.recorder.add_event(t, "stream", status=event.kind, detail=event.detail)
        self._say(f"[{t:7.2f} s] stream {event.kind}: {event.detail}")
        if event.kind == "malformed":
            self.summary.malformed += 1
        if event.kind in ("disconnected", "malformed", "error"):
            self.summary.disconnects += 1
            self.client_left = self.client_left or event.poses > 0

    def _events(self) -> None:
        for event in self.receiver.drain_events():
            self._event(event)

    def _followed(self, message: PoseMessage) -> bool:
        if self.device is None:
            self.device = message.device_name
        if message.device_name == self.device:
            return True
        self.summary.ignored += 1
        if message.device_name not in self._ignored_devices:
            self._ignored_devices.add(message.device_name)
            t = message.arrival_s - self.start
            detail = f"poses of device {message.device_name!r} ignored (following {self.device!r})"
            self.recorder.add_event(t, "stream", status="ignored", detail=detail)
            self._say(f"[{t:7.2f} s] stream ignored: {detail}")
        return False

    def _pose(self, message: PoseMessage) -> LiveState:
        twin = self.twin
        pose_lps = twin.to_image(message.matrix)
        state = twin.update_image(pose_lps)
        done = time.perf_counter()
        latency_ms = (done - message.arrival_s) * 1000.0
        self.latencies_ms.append(latency_ms)
        self.sequences.see(message.sequence, (message.source, message.device_name))
        t = message.arrival_s - self.start
        self.recorder.add_pose(t, message.matrix, pose_lps, state, latency_ms=latency_ms, sequence=message.sequence,
                               sent_time_s=message.sent_time_s)
        if self.on_state is not None:
            self.on_state(message, state)
        if state.alarm and not self._alarm_on:
            self.summary.alarms += 1
            self._say(f"[{t:7.2f} s] ALARM {state.summary()}")
        elif self._alarm_on and not state.alarm:
            self._say(f"[{t:7.2f} s] alarm cleared")
        self._alarm_on = state.alarm
        if done - self._last_print >= self.print_every_s:
            self._say(f"[{t:7.2f} s] {state.summary()}")
            self._last_print = done
        self.latest = state
        return state

    def poll(self, timeout_s: float = 0.0) -> LiveState | None:
        """Process everything queued (waiting up to ``timeout_s`` for a first pose); the latest state or
        ``None`` when no pose came."""
        self._events()
        try:
            message = self.receiver.poses.get(timeout=timeout_s) if timeout_s > 0 else \
                self.receiver.poses.get_nowait()
        except queue.Empty:
            return None
        state = None
        while True:
            self._events()  # events that arrived before this pose (e.g. "connected") come first
            if self._followed(message):
                state = self._pose(message)
            try:
                message = self.receiver.poses.get_nowait()
            except queue.Empty:
                return state

    def finish(self) -> LiveSummary:
        """Record the last stream events and the counters; the summary."""
        self._events()
        summary = self.summary
        summary.poses = self.recorder.n_poses
        summary.dropped = self.sequences.dropped
        self.recorder.counters.update(messages_received=summary.poses, messages_dropped=summary.dropped,
                                      malformed_messages=summary.malformed)
        if self.latencies_ms:
            lat = np.asarray(self.latencies_ms)
            summary.latency_ms_median = float(np.median(lat))
            summary.latency_ms_p95 = float(np.percentile(lat, 95))
            summary.latency_ms_max = float(lat.max())
        return summary


def run_live(twin: LiveTwin, receiver: TransformReceiver, recorder: SessionRecorder, *,
             duration_s: float | None = None, stop: threading.Event | None = None,
             stop_on_disconnect: bool = False, print_every_s: float = 0.5,
             out: Callable[[str], None] | None = print,
             on_state: Callable[[PoseMessage, LiveState], None] | None = None,
             device: str | None = None) -> LiveSummary:
    """Process every pose the receiver gets until ``duration_s`` has passed, ``stop`` is set, or (with
    ``stop_on_disconnect``) a client that had sent poses went away. Stream problems are printed and
    recorded as events; they never end the loop by themselves. ``device``: see :class:`LiveMonitor`."""
    monitor = LiveMonitor(twin, receiver, recorder, out=out, print_every_s=print_every_s, on_state=on_state,
                          device=device)
    try:
        while not ((duration_s is not None and time.perf_counter() - monitor.start >= duration_s)
                   or (stop is not None and stop.is_set())):
            got = monitor.poll(timeout_s=0.02)
            if got is None and stop_on_disconnect and monitor.client_left and receiver.poses.empty():
                break
    finally:
        summary = monitor.finish()
    return summary
