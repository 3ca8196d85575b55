"""OpenIGTLink: send a plan to a controller and receive TRANSFORM streams (pyigtl messages).

What :func:`send_plan` sends (OpenIGTLink header version 2, so each message carries metadata
``frame``, ``units`` = ``mm`` and, for trajectories, ``trajectory`` = the plan's name):

* ``PLAN`` (STRING): the whole plan document as compact JSON with its digest and signature,
  exact to the last bit (the receiver can run ``verify_plan`` on it). STRING holds at most
  65535 bytes; a larger plan is refused.
* ``Traj01To<Frame>``, ``Traj02To<Frame>``, ... (TRANSFORM): each trajectory's tool pose in plan
  order (tool-axis convention of :mod:`workstation.export.tool_pose`: origin at the target, +z
  along the insertion direction). ``<Frame>`` is ``ImageLPS``, ``ImageRAS`` or ``Registered``.
* ``Traj01Points``, ... (POINT): two points named ``<trajectory>/entry`` and ``<trajectory>/target``,
  group = the frame name, diameter = the tool diameter in mm.
* ``Implant01To<Frame>`` (TRANSFORM) per implant and ``Landmarks`` (POINT) with every landmark.

Frames: messages carry the plan file's own frame (image LPS, or the registered robot/patient
frame). 3D Slicer and many OpenIGTLink tools assume RAS; ``ras=True`` converts an image-frame
plan to RAS (x and y negated) and says so in the device names and metadata. The STRING plan is
never converted: it states its own frame.

Precision: TRANSFORM and POINT carry IEEE float32 (the OpenIGTLink wire format), so a
coordinate of magnitude ``|v|`` mm arrives rounded to within ``|v| * 2**-24`` (about 3e-5 mm at
500 mm). The exact values travel in the STRING plan.

Transport: a plain TCP connection (clear errors when nothing listens, no retry loop); message
encoding and decoding are pyigtl's. The receiver also checks each message's CRC-64, which pyigtl
itself does not.
"""

from __future__ import annotations

import json
import socket
import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pyigtl
from numpy.typing import NDArray
from pyigtl.messages import CRC64, MessageBase

from workstation.errors import InputError

STRING_LIMIT_BYTES = 65535
# Largest body accepted (a TRANSFORM body is 48 bytes; IMAGE bodies can be large but are not ours).
MAX_BODY_BYTES = 64 * 1024 * 1024
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_HEADER_VERSION = 2


def parse_address(text: str, *, option: str = "--igtl", default_host: str | None = None) -> tuple[str, int]:
    """``HOST:PORT`` -> ``(host, port)``; with ``default_host`` a bare ``PORT`` is accepted too."""
    host, sep, port_text = text.rpartition(":")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    host = host or (default_host or "")
    if not host or not 0 < port < 65536 or (not sep and default_host is None):
        raise InputError(f"{option} {text!r}: expected HOST:PORT with a port in 1..65535, e.g. 127.0.0.1:18944")
    return host, port


class MalformedMessageError(ValueError):
    """The bytes on the socket are not a valid OpenIGTLink message."""


def check_header(header: bytes) -> int:
    """Body size announced by a 58-byte header, after sanity checks that reject garbage early."""
    version = struct.unpack("> H", header[:2])[0]
    if version not in (1, 2):
        raise MalformedMessageError(f"header version {version} is not 1 or 2")
    kind = header[2:14].rstrip(b"\0 ")
    if not kind or not all(32 < c < 127 for c in kind):
        raise MalformedMessageError("message type is not printable ASCII")
    body_size = struct.unpack("> Q", header[42:50])[0]
    if body_size > MAX_BODY_BYTES:
        raise MalformedMessageError(f"announced body of {body_size} bytes exceeds {MAX_BODY_BYTES}")
    return int(body_size)


def decode_message(header: bytes, body: bytes) -> Any:
    """Decode one message with pyigtl after checking its CRC-64 (pyigtl does not); returns the pyigtl
    message, or the header fields for a type pyigtl does not know. Raises :class:`MalformedMessageError`."""
    try:
        fields = MessageBase.parse_header(header)
    except (struct.error, UnicodeDecodeError) as exc:
        raise MalformedMessageError(f"unreadable header ({exc})") from None
    crc = struct.unpack("> Q", header[50:58])[0]
    if CRC64(body) != crc:
        raise MalformedMessageError(f"CRC mismatch (CRC-64) in {fields['message_type'] or '?'} message")
    message = MessageBase.create_message(fields["message_type"])
    if message is None:
        return fields
    try:
        message.unpack(fields, body)
    except Exception as exc:  # pyigtl raises struct.error, IndexError, TypeError... on bad bodies
        raise MalformedMessageError(f"bad {fields['message_type']} body ({type(exc).__name__}: {exc})") from None
    return message


def _fit(text: str, size: int) -> str:
    """``text`` cut to at most ``size`` UTF-8 bytes on a character boundary (fixed-size IGTL fields)."""
    return text.encode("utf-8")[:size].decode("utf-8", errors="ignore")


def _with_meta(message: MessageBase, meta: dict[str, str]) -> MessageBase:
    message.header_version = _HEADER_VERSION
    # ASCII with backslash escapes: pyigtl 0.3.4 fails to fall back to UTF-8 for metadata values.
    message.metadata = {k: v.encode("ascii", "backslashreplace").decode("ascii") for k, v in meta.items()}
    return message


def plan_messages(document: dict[str, Any], *, ras: bool = False) -> list[MessageBase]:
    """The pyigtl messages that carry ``document`` (see the module docstring for names)."""
    frame = document["coordinate_frame"]
    in_image = frame["coordinate_system"] == "LPS"
    if ras and not in_image:
        raise InputError(f"--ras: the plan is in frame {frame['name']!r}; RAS conversion applies to the image "
                         "LPS frame only")
    convert = _LPS_TO_RAS if ras else np.eye(4)
    tag = ("ImageRAS" if ras else "ImageLPS") if in_image else "Registered"
    frame_name = f"{frame['name']}(RAS)" if ras else frame["name"]
    common = {"frame": frame_name, "units": "mm", "coordinate_system": "RAS" if ras else frame["coordinate_system"]}

    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    if len(text) > STRING_LIMIT_BYTES:
        raise InputError(f"plan: {len(text)} bytes of JSON exceed the OpenIGTLink STRING limit of "
                         f"{STRING_LIMIT_BYTES} bytes")
    messages: list[MessageBase] = [_with_meta(pyigtl.StringMessage(text, device_name="PLAN"),
                                              {**common, "content": "surgical-twin-plan JSON"})]

    def point(p: list[float]) -> NDArray[np.float64]:
        return convert[:3, :3] @ np.asarray(p, dtype=float)

    for n, t in enumerate(document["trajectories"], start=1):
        meta = {**common, "trajectory": t["name"], "tool_diameter_mm": repr(t["tool_diameter_mm"])}
        messages.append(_with_meta(pyigtl.TransformMessage(convert @ np.asarray(t["pose"], dtype=float),
                                                           device_name=f"Traj{n:02d}To{tag}"), meta))
        messages.append(_with_meta(pyigtl.PointMessage(
            positions=np.array([point(t["entry_mm"]), point(t["target_mm"])]),
            names=[_fit(f"{t['name']}/entry", 64), _fit(f"{t['name']}/target", 64)], groups=_fit(frame_name, 32),
            diameters=[t["tool_diameter_mm"]] * 2, owners=f"Traj{n:02d}", device_name=f"Traj{n:02d}Points"), meta))
    for n, implant in enumerate(document["implants"], start=1):
        messages.append(_with_meta(pyigtl.TransformMessage(convert @ np.asarray(implant["pose"], dtype=float),
                                                           device_name=f"Implant{n:02d}To{tag}"),
                                   {**common, "implant": implant["name"], "kind": implant["kind"]}))
    if document["landmarks"]:
        messages.append(_with_meta(pyigtl.PointMessage(
            positions=np.array([point(lm["position_mm"]) for lm in document["landmarks"]]),
            names=[_fit(lm["name"], 64) for lm in document["landmarks"]], groups=_fit(frame_name, 32),
            device_name="Landmarks"), common))
    return messages


def _connect(host: str, port: int, timeout_s: float) -> socket.socket:
    try:
        return socket.create_connection((host, port), timeout=timeout_s)
    except ConnectionRefusedError as exc:
        raise InputError(f"--igtl {host}:{port}: nothing listens there (connection refused); start the "
                         "controller's OpenIGTLink server first") from exc
    except TimeoutError as exc:
        raise InputError(f"--igtl {host}:{port}: no answer within {timeout_s:g} s") from exc
    except OSError as exc:
        raise InputError(f"--igtl {host}:{port}: cannot connect ({exc.strerror or exc})") from exc


def send_plan(document: dict[str, Any], host: str, port: int, *, ras: bool = False,
              timeout_s: float = 5.0) -> list[str]:
    """Send ``document`` to the OpenIGTLink server at ``host:port``; returns the device names sent."""
    messages = plan_messages(document, ras=ras)
    data = b"".join(m.pack() for m in messages)
    with _connect(host, port, timeout_s) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            raise InputError(f"--igtl {host}:{port}: connection lost while sending ({exc.strerror or exc})") from exc
    return [m.device_name for m in messages]


# ---------------------------------------------------------------------------------------------- receiving
class TransformEvent(NamedTuple):
    """One event of a TRANSFORM stream.

    ``kind`` is ``"transform"`` (``matrix`` (4, 4) float64 of float32 wire values, ``timestamp`` s
    since 1970), ``"malformed"`` (``detail`` says why; the stream goes on when it can),
    ``"disconnected"`` or ``"timeout"`` (the last event of a stream).
    """

    kind: str
    device_name: str = ""
    matrix: NDArray[np.float64] | None = None
    timestamp: float | None = None
    detail: str = ""


class TransformReceiver:
    """Connects to an OpenIGTLink server (a tracker or a robot controller) and yields its TRANSFORMs.

    Use as a context manager; iterate to get :class:`TransformEvent`s. Messages of other types
    are skipped (counted in ``skipped``). A TRANSFORM whose CRC, size or matrix (non-finite, or
    rotation not orthonormal to 1e-3) is wrong is reported as ``"malformed"``.
    """

    def __init__(self, host: str, port: int, *, idle_timeout_s: float = 5.0, connect_timeout_s: float = 5.0) -> None:
        self.host, self.port = host, port
        self.idle_timeout_s = idle_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.skipped = 0
        self._sock: socket.socket | None = None

    def connect(self) -> TransformReceiver:
        if self._sock is None:
            self._sock = _connect(self.host, self.port, self.connect_timeout_s)
            self._sock.settimeout(self.idle_timeout_s)
        return self

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> TransformReceiver:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read(self, size: int) -> bytes | None:
        """Exactly ``size`` bytes, or None when the peer closed the connection."""
        assert self._sock is not None
        chunks, missing = [], size
        while missing:
            chunk = self._sock.recv(min(missing, 1 << 16))
            if not chunk:
                return None
            chunks.append(chunk)
            missing -= len(chunk)
        return b"".join(chunks)

    def __iter__(self) -> Iterator[TransformEvent]:
        self.connect()
        while True:
            try:
                header = self._read(MessageBase.IGTL_HEADER_SIZE)
                if header is None:
                    yield TransformEvent("disconnected", detail="the server closed the connection")
                    return
                try:
                    body_size = check_header(header)
                except MalformedMessageError as exc:
                    yield TransformEvent("malformed", detail=f"{exc}; stream abandoned")
                    yield TransformEvent("disconnected", detail="closed after a malformed header")
                    return
                body = self._read(body_size)
                if body is None:
                    yield TransformEvent("disconnected", detail="closed in the middle of a message")
                    return
            except TimeoutError:
                yield TransformEvent("timeout", detail=f"no data for {self.idle_timeout_s:g} s")
                return
            except OSError as exc:
                yield TransformEvent("disconnected", detail=f"connection error: {exc.strerror or exc}")
                return
            if header[2:14].rstrip(b"\0 ") != b"TRANSFORM":
                self.skipped += 1
                continue
            yield self._transform_event(header, body)

    @staticmethod
    def _transform_event(header: bytes, body: bytes) -> TransformEvent:
        name = header[14:34].rstrip(b"\0").decode("ascii", "replace")
        try:
            message = decode_message(header, body)
        except MalformedMessageError as exc:
            return TransformEvent("malformed", name, detail=str(exc))
        matrix = np.asarray(message.matrix, dtype=float)
        rotation = matrix[:3, :3]
        if not np.all(np.isfinite(matrix)):
            return TransformEvent("malformed", name, detail="non-finite values")
        if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-3):
            return TransformEvent("malformed", name, matrix=matrix, timestamp=message.timestamp,
                                  detail="rotation part is not orthonormal")
        return TransformEvent("transform", name, matrix, float(message.timestamp))


def receive_transforms(host: str, port: int, *, count: int | None = None,
                       idle_timeout_s: float = 5.0) -> Iterator[TransformEvent]:
    """Convenience generator: connect, yield up to ``count`` transforms plus any problem events."""
    received = 0
    with TransformReceiver(host, port, idle_timeout_s=idle_timeout_s) as receiver:
        for event in receiver:
            yield event
            received += event.kind == "transform"
            if count is not None and received >= count:
                return
            if event.kind in ("disconnected", "timeout"):
                return
