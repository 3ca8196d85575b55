"""OpenIGTLink TRANSFORM streams over TCP: a robust receiving server and a paced sender.

Messages are encoded and decoded with pyigtl (``TransformMessage.pack``, ``MessageBase.parse_header``,
``create_message``, ``unpack`` and its ``CRC64``). The socket handling is our own because pyigtl's
``OpenIGTLinkServer`` keeps only the latest message per device (silently dropping the others when the
consumer is slower than the stream), spins without returning when a client disconnects (so no next client
is accepted), installs SIGINT/SIGTERM handlers (impossible outside the main thread), prints tracebacks on
malformed data and does not check the CRC; its client polls with 10 ms receive time-outs and drops
queued messages beyond 100. Here every message is queued with its arrival time, every stream problem
becomes a :class:`StreamEvent`, each client is served in its own thread (an idle or stalled client never
blocks another) and the server keeps accepting clients.
"""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from workstation.export.igtl import MalformedMessageError, check_header, decode_message, parse_address

_HEADER_SIZE = 58


@dataclass(frozen=True)
class PoseMessage:
    """One received TRANSFORM.

    Attributes
    ----------
    device_name : the OpenIGTLink device name (e.g. ``"ToolToTracker"``).
    matrix : (4, 4) pose as sent (mm, sender's frame).
    sent_time_s : the header timestamp (seconds since 1970, sender clock).
    arrival_s : ``time.perf_counter()`` when the whole message had arrived (for latency).
    sequence : the message id (header version 2) or ``None``; the simulator numbers its messages 0, 1, ...
    source : the sending client (``host:port``).
    """

    device_name: str
    matrix: NDArray[np.float64]
    sent_time_s: float
    arrival_s: float
    sequence: int | None = None
    source: str = ""


@dataclass(frozen=True)
class StreamEvent:
    """Something that happened to the stream: ``kind`` is ``connected``, ``disconnected``, ``malformed``,
    ``ignored`` (a valid message of another type) or ``error``; ``detail`` says what in one line;
    ``poses`` counts the poses received on that connection so far; ``source`` is the client (``host:port``)."""

    kind: str
    detail: str
    arrival_s: float = field(default_factory=time.perf_counter)
    poses: int = 0
    source: str = ""


def pack_transform(matrix: NDArray[np.float64], *, device_name: str, sequence: int | None = None,
                   timestamp: float | None = None) -> bytes:
    """An OpenIGTLink TRANSFORM message (header version 2 with ``message_id`` when ``sequence`` is given)."""
    import pyigtl

    message = pyigtl.TransformMessage(np.asarray(matrix, dtype=float), device_name=device_name,
                                      timestamp=time.time() if timestamp is None else timestamp)
    if sequence is not None:
        message.header_version = 2
        message.message_id = int(sequence)
    return message.pack()


class _Connection:
    """Reads exact byte counts from a socket, with a stop flag and a stall time-out."""

    def __init__(self, sock: socket.socket, stop: threading.Event, stall_timeout_s: float) -> None:
        self.sock, self.stop, self.stall_timeout_s = sock, stop, stall_timeout_s

    def read(self, n: int, *, idle_ok: bool) -> bytes | None:
        """``n`` bytes; ``None`` when the peer closed before the first byte (clean end) or on stop."""
        chunks: list[bytes] = []
        got = 0
        last = time.monotonic()
        while got < n:
            if self.stop.is_set():
                return None
            try:
                chunk = self.sock.recv(n - got)
            except TimeoutError:
                if (got or not idle_ok) and time.monotonic() - last > self.stall_timeout_s:
                    raise MalformedMessageError(f"stream stalled mid-message ({got} of {n} bytes)") from None
                continue
            if not chunk:
                if got == 0 and idle_ok:
                    return None
                raise MalformedMessageError(f"peer closed mid-message ({got} of {n} bytes)")
            chunks.append(chunk)
            got += len(chunk)
            last = time.monotonic()
        return b"".join(chunks)


class TransformReceiver:
    """A TCP server on ``host:port`` that receives OpenIGTLink messages, each client in its own thread.

    Poses go to :attr:`poses` (a queue of :class:`PoseMessage`, never dropped); stream problems go to
    :attr:`events` (a queue of :class:`StreamEvent`). A malformed message closes that connection (a TCP
    byte stream cannot be re-synchronised safely); other clients and later ones are served on.
    Use as a context manager, or call :meth:`close`. ``port=0`` picks a free port (see :attr:`port`).
    """

    def __init__(self, port: int = 18944, *, host: str = "127.0.0.1", stall_timeout_s: float = 2.0,
                 on_pose: Callable[[PoseMessage], None] | None = None) -> None:
        self.poses: queue.Queue[PoseMessage] = queue.Queue()
        self.events: queue.Queue[StreamEvent] = queue.Queue()
        self.stall_timeout_s = stall_timeout_s
        self.on_pose = on_pose
        self.received = 0
        self.malformed = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._clients: list[threading.Thread] = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._server.bind((host, port))
        except OSError as exc:
            self._server.close()
            from workstation.errors import InputError

            raise InputError(f"--igtl-listen {port}: cannot listen on {host}:{port} ({exc.strerror})") from None
        self._server.listen(8)
        self._server.settimeout(0.05)
        self.host, self.port = self._server.getsockname()[:2]
        self._thread = threading.Thread(target=self._serve, name=f"igtl-receiver-{self.port}", daemon=True)
        self._thread.start()

    def __enter__(self) -> TransformReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server thread and close the sockets."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        for worker in self._clients:
            worker.join(timeout=2.0)
        self._server.close()

    def _event(self, kind: str, detail: str, *, source: str = "", poses: int = 0) -> None:
        self.events.put(StreamEvent(kind, detail, poses=poses, source=source))

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, address = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            source = f"{address[0]}:{address[1]}"
            self._event("connected", f"client {source}", source=source)
            worker = threading.Thread(target=self._client, args=(sock, source), name=f"igtl-client-{source}",
                                      daemon=True)
            worker.start()
            self._clients.append(worker)
            self._clients = [w for w in self._clients if w.is_alive()]

    def _client(self, sock: socket.socket, source: str) -> None:
        """One connection, in its own thread: a stalled or idle client never blocks another."""
        counter = [0]
        try:
            self._handle(sock, source, counter)
        except MalformedMessageError as exc:
            with self._lock:
                self.malformed += 1
            self._event("malformed", f"client {source}: {exc}; connection closed", source=source, poses=counter[0])
        except OSError as exc:
            self._event("disconnected", f"client {source}: connection error ({exc})", source=source,
                        poses=counter[0])
        except Exception as exc:  # never let a receiving thread die on a stream
            self._event("error", f"client {source}: {type(exc).__name__}: {exc}", source=source, poses=counter[0])
        finally:
            sock.close()

    def _handle(self, sock: socket.socket, source: str, counter: list[int]) -> None:
        sock.settimeout(0.05)
        conn = _Connection(sock, self._stop, self.stall_timeout_s)
        while True:
            header = conn.read(_HEADER_SIZE, idle_ok=True)
            if header is None:
                if not self._stop.is_set():
                    self._event("disconnected", f"client {source} closed the connection", source=source,
                                poses=counter[0])
                return
            body_size = check_header(header)
            body = conn.read(body_size, idle_ok=False) if body_size else b""
            if body is None:
                return
            arrival = time.perf_counter()
            message = decode_message(header, body)
            if getattr(message, "message_type", None) != "TRANSFORM":
                kind = message.get("message_type") if isinstance(message, dict) else message.message_type
                self._event("ignored", f"client {source}: {kind} message (only TRANSFORM is used)", source=source,
                            poses=counter[0])
                continue
            matrix = np.asarray(message.matrix, dtype=float)
            if not np.all(np.isfinite(matrix)):
                with self._lock:
                    self.malformed += 1
                self._event("malformed", f"client {source}: non-finite TRANSFORM from {message.device_name!r} "
                                         "skipped", source=source, poses=counter[0])
                continue
            pose = PoseMessage(message.device_name, matrix, float(message.timestamp), arrival,
                               int(message.message_id) if message.header_version > 1 else None, source)
            with self._lock:
                self.received += 1
            counter[0] += 1
            if self.on_pose is not None:
                self.on_pose(pose)
            self.poses.put(pose)

    def drain_events(self) -> list[StreamEvent]:
        """All stream events queued so far."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out


def parse_host_port(text: str, option: str = "--igtl") -> tuple[str, int]:
    """``HOST:PORT`` (or ``PORT``) -> (host, port); :class:`~workstation.errors.InputError` when invalid."""
    return parse_address(text, option=option, default_host="127.0.0.1")


def stream_poses(poses: Iterable[NDArray[np.float64]], *, host: str, port: int, rate_hz: float,
                 device_name: str = "ToolToTracker", connect_timeout_s: float = 5.0, realtime: bool = True,
                 stop: threading.Event | None = None) -> int:
    """Send ``poses`` as numbered TRANSFORM messages to an OpenIGTLink server at ``rate_hz``.

    Connects (retrying until ``connect_timeout_s``), paces the messages on a monotonic clock (no drift)
    when ``realtime`` and returns the number sent. Message ``n`` is time-stamped with its acquisition time
    ``t0 + n / rate_hz`` (``t0`` = wall clock at the first message), as a tracker stamps its samples, so
    the stream's timing survives a late delivery (or a non-realtime stream). Raises
    :class:`ConnectionError` when the server cannot be reached or goes away.
    """
    deadline = time.monotonic() + connect_timeout_s
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=1.0)
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                raise ConnectionError(f"no OpenIGTLink server at {host}:{port} ({exc.strerror or exc})") from None
            time.sleep(0.05)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent = 0
    start = time.monotonic()
    wall0 = time.time()
    try:
        for n, pose in enumerate(poses):
            if stop is not None and stop.is_set():
                break
            if realtime:
                delay = start + n / rate_hz - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            try:
                sock.sendall(pack_transform(pose, device_name=device_name, sequence=n, timestamp=wall0 + n / rate_hz))
            except OSError as exc:
                raise ConnectionError(f"OpenIGTLink server at {host}:{port} went away after {sent} messages "
                                      f"({exc.strerror or exc})") from None
            sent += 1
    finally:
        sock.close()
    return sent
