"""OpenIGTLink round trips against real pyigtl peers on loopback."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time

import numpy as np
import pyigtl
import pytest

from tests.conftest import free_port
from tests.workstation.export.plan_samples import max_plan_difference, sample_case
from workstation.errors import InputError
from workstation.export import igtl
from workstation.export import plan_json as pj

KEY = bytes(range(40))


def wait_for(server: pyigtl.OpenIGTLinkServer, name: str) -> pyigtl.MessageBase:
    message = server.wait_for_message(name, timeout=10)
    assert message is not None, f"no {name} message arrived"
    return message


def test_plan_round_trip_through_a_pyigtl_server(igtl_server) -> None:
    case = sample_case()
    document = pj.sign_document(pj.build_plan_document(case), KEY)
    names = igtl.send_plan(document, "127.0.0.1", igtl_server.port)
    assert names[0] == "PLAN" and "Traj01ToImageLPS" in names and "Traj01Points" in names
    # STRING: the exact plan; it verifies on the receiving side and gives back the same plan.
    plan_message = wait_for(igtl_server, "PLAN")
    received = json.loads(plan_message.string)
    assert received == document
    assert pj.verify_plan(received, KEY).verified
    assert max_plan_difference(pj.plan_from_document(received), case.plan) == 0.0
    assert plan_message.metadata["frame"] == "image_lps" and plan_message.metadata["units"] == "mm"
    # TRANSFORM and POINT: float32 on the wire (OpenIGTLink), so each value arrives as float32(value)
    # exactly; the error is at most |value| * 2**-24 (3e-6 mm at -120.2 mm: 1e-6 mm cannot hold here).
    worst = 0.0
    for n, trajectory in enumerate(document["trajectories"], start=1):
        transform = wait_for(igtl_server, f"Traj{n:02d}ToImageLPS")
        sent = np.array(trajectory["pose"])
        got = np.asarray(transform.matrix, dtype=float)
        assert np.array_equal(got, sent.astype(np.float32).astype(float))
        assert np.all(np.abs(got - sent) <= np.abs(sent) * 2.0**-24)
        worst = max(worst, float(np.abs(got - sent)[:3, 3].max()))
        assert transform.metadata["trajectory"] == trajectory["name"]
        points = wait_for(igtl_server, f"Traj{n:02d}Points")
        expected = np.array([trajectory["entry_mm"], trajectory["target_mm"]])
        assert np.array_equal(np.array(points.positions, dtype=float), expected.astype(np.float32).astype(float))
        assert points.names == [f"{trajectory['name']}/entry", f"{trajectory['name']}/target"]
    assert 1e-7 < worst < 1e-4  # the measured float32 rounding of these coordinates (-800..-60 mm)
    landmarks = wait_for(igtl_server, "Landmarks")
    assert [n for n in landmarks.names] == [lm["name"] for lm in document["landmarks"]]


def test_ras_conversion_for_slicer(igtl_server) -> None:
    document = pj.build_plan_document(sample_case())
    igtl.send_plan(document, "127.0.0.1", igtl_server.port, ras=True)
    transform = wait_for(igtl_server, "Traj01ToImageRAS")
    pose = np.array(document["trajectories"][0]["pose"])
    expected = np.diag([-1.0, -1.0, 1.0, 1.0]) @ pose
    assert np.allclose(transform.matrix, expected, atol=1e-4)
    assert transform.metadata["coordinate_system"] == "RAS"
    with pytest.raises(InputError, match="RAS conversion"):
        igtl.plan_messages(pj.build_plan_document(sample_case(), frame="robot"), ras=True)


def test_nothing_listening_is_a_clear_input_error() -> None:
    port = free_port()
    document = pj.build_plan_document(sample_case())
    with pytest.raises(InputError, match=f"127.0.0.1:{port}: nothing listens"):
        igtl.send_plan(document, "127.0.0.1", port, timeout_s=2)
    with pytest.raises(InputError, match="HOST:PORT"):
        igtl.parse_address("localhost")
    assert igtl.parse_address("10.0.0.5:18944") == ("10.0.0.5", 18944)


def test_receiver_yields_a_transform_stream_then_reports_the_disconnection(igtl_server) -> None:
    rng = np.random.default_rng(5)
    sent = []
    with igtl.TransformReceiver("127.0.0.1", igtl_server.port, idle_timeout_s=10) as receiver:
        deadline = time.monotonic() + 10
        while not igtl_server.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        for n in range(5):
            matrix = np.eye(4)
            q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
            matrix[:3, :3] = q * np.sign(np.linalg.det(q))
            matrix[:3, 3] = rng.uniform(-300, 300, 3)
            timestamp = 1_700_000_000.0 + n * 0.05
            sent.append((matrix, timestamp))
            message = pyigtl.TransformMessage(matrix, timestamp=timestamp, device_name="StylusToTracker")
            igtl_server.send_message(message, wait=True)
        igtl_server.send_message(pyigtl.StringMessage("not a transform", device_name="Status"), wait=True)
        events = []
        for event in receiver:
            events.append(event)
            if len(events) == 5:
                igtl_server.stop()  # the tracker goes away
            if event.kind != "transform":
                break
    transforms = [e for e in events if e.kind == "transform"]
    assert len(transforms) == 5
    for event, (matrix, timestamp) in zip(transforms, sent, strict=True):
        assert event.device_name == "StylusToTracker"
        assert np.allclose(event.matrix, matrix, atol=1e-4)
        assert abs(event.timestamp - timestamp) < 1e-6
    assert events[-1].kind == "disconnected"


def _raw_message(device: str, body: bytes, *, crc: int | None = None) -> bytes:
    from pyigtl.messages import CRC64

    header = struct.pack("> H 12s 20s II Q Q", 1, b"TRANSFORM", device.encode(), 1_700_000_000, 0, len(body),
                         CRC64(body) if crc is None else crc)
    return header + body


def test_receiver_reports_malformed_transforms() -> None:
    good = pyigtl.TransformMessage(np.eye(4), device_name="Good").pack()
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF  # a flipped byte of the body: CRC mismatch
    nan_body = struct.pack("> 12f", *([float("nan")] * 12))
    skew_body = struct.pack("> 12f", 2.0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
    short_body = b"\x00" * 10
    payload = (bytes(bad_crc) + _raw_message("NaN", nan_body) + _raw_message("Skew", skew_body)
               + _raw_message("Short", short_body) + good)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(payload)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        events = list(igtl.receive_transforms("127.0.0.1", listener.getsockname()[1], idle_timeout_s=10))
        thread.join(5)
    kinds = [(e.kind, e.device_name) for e in events]
    assert kinds == [("malformed", "Good"), ("malformed", "NaN"), ("malformed", "Skew"), ("malformed", "Short"),
                     ("transform", "Good"), ("disconnected", "")]
    assert "CRC" in events[0].detail and "non-finite" in events[1].detail and "orthonormal" in events[2].detail


def test_receiver_reports_a_silent_server_as_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
        thread.start()
        events = list(igtl.receive_transforms("127.0.0.1", listener.getsockname()[1], idle_timeout_s=0.3))
        thread.join(5)
        for conn in accepted:
            conn.close()
    assert [e.kind for e in events] == ["timeout"] and "0.3 s" in events[0].detail


def test_non_ascii_names_pack_and_unpack() -> None:
    document = pj.build_plan_document(sample_case())
    document["trajectories"][0]["name"] = "vis pédiculaire gauche " * 3
    document["landmarks"][0]["name"] = "épine"
    for message in igtl.plan_messages(document):
        packed = message.pack()
        header = pyigtl.MessageBase.parse_header(packed[:58])
        copy = pyigtl.MessageBase.create_message(header["message_type"])
        copy.unpack(header, packed[58:])
        assert copy.device_name == message.device_name
    points = next(m for m in igtl.plan_messages(document) if m.device_name == "Traj01Points")
    assert len(points.names[0].encode()) <= 64
