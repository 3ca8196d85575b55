"""OpenIGTLink over loopback: every pose arrives, bad streams are reported and the server survives."""

from __future__ import annotations

import itertools
import socket
import threading
import time

import numpy as np
import pyigtl
import pytest

from workstation.errors import InputError
from workstation.live.igtl_stream import PoseMessage, TransformReceiver, pack_transform, parse_host_port, stream_poses
from workstation.live.pose import tool_pose


def wait_for(predicate, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def poses(n: int) -> np.ndarray:
    return np.stack([tool_pose((0.5 * i, -20.0 + i, 100.0 + 0.25 * i), (0.1, 0.2, 1.0)) for i in range(n)])


def take_all(receiver: TransformReceiver) -> list[PoseMessage]:
    out = []
    while not receiver.poses.empty():
        out.append(receiver.poses.get_nowait())
    return out


def test_every_pose_arrives_in_order_at_60_hz() -> None:
    sent = poses(60)
    with TransformReceiver(0) as receiver:
        assert stream_poses(sent, host="127.0.0.1", port=receiver.port, rate_hz=60) == 60
        wait_for(lambda: receiver.received == 60)
        got = take_all(receiver)
    assert [m.sequence for m in got] == list(range(60))
    np.testing.assert_allclose(np.stack([m.matrix for m in got]), sent, atol=1e-4)  # float32 on the wire
    assert got[0].device_name == "ToolToTracker"
    assert all(b.arrival_s > a.arrival_s for a, b in itertools.pairwise(got))


def test_garbage_truncation_and_bad_crc_are_reported_and_the_server_keeps_serving() -> None:
    good = pack_transform(np.eye(4), device_name="Tool", sequence=0)
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF  # body changed after the CRC was computed
    with TransformReceiver(0) as receiver:
        for payload in (b"\xff" * 100, b"\x00\x01GARBAGE-NOT-IGTL" * 10, bytes(bad_crc), good[:70]):
            with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
                sock.sendall(payload)
        wait_for(lambda: receiver.malformed == 4)
        # still serving: a normal stream after the bad ones
        stream_poses(poses(5), host="127.0.0.1", port=receiver.port, rate_hz=200)
        wait_for(lambda: receiver.received == 5)
        details = [e.detail for e in receiver.drain_events() if e.kind == "malformed"]
    assert any("header version 65535" in d for d in details)
    assert any("exceeds" in d for d in details)  # garbage announcing an absurd body size
    assert any("CRC mismatch" in d for d in details)
    assert any("peer closed mid-message" in d for d in details)


def test_disconnect_other_messages_and_a_pyigtl_client() -> None:
    with TransformReceiver(0) as receiver:
        with socket.create_connection(("127.0.0.1", receiver.port)) as sock:
            sock.sendall(pyigtl.StringMessage("hello", device_name="Text").pack())
            sock.sendall(pack_transform(np.eye(4), device_name="Tool"))
        wait_for(lambda: receiver.received == 1)
        client = pyigtl.OpenIGTLinkClient("127.0.0.1", receiver.port)
        try:
            matrix = tool_pose((1.0, 2.0, 3.0), (0.0, 1.0, 0.0))
            client.send_message(pyigtl.TransformMessage(matrix, device_name="PyigtlTool"), wait=True)
            wait_for(lambda: receiver.received == 2)
        finally:
            client.stop()
        events = receiver.drain_events()
        got = take_all(receiver)
    kinds = [e.kind for e in events]
    assert "ignored" in kinds and kinds.count("connected") == 2 and "disconnected" in kinds
    assert got[0].sequence is None and got[1].device_name == "PyigtlTool"
    np.testing.assert_allclose(got[1].matrix, matrix, atol=1e-6)


def test_addresses_and_unreachable_server() -> None:
    assert parse_host_port("example:18944") == ("example", 18944)
    assert parse_host_port("18944") == ("127.0.0.1", 18944)
    with pytest.raises(InputError, match="HOST:PORT"):
        parse_host_port("host:99999")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    with pytest.raises(ConnectionError, match="no OpenIGTLink server"):
        stream_poses(poses(2), host="127.0.0.1", port=free, rate_hz=10, connect_timeout_s=0.2)
    with TransformReceiver(0) as receiver, pytest.raises(InputError, match="cannot listen"):
        TransformReceiver(receiver.port)


def test_server_going_away_mid_stream_is_a_connection_error() -> None:
    receiver = TransformReceiver(0)
    port = receiver.port
    stop_after = threading.Timer(0.3, receiver.close)
    stop_after.start()
    with pytest.raises(ConnectionError, match="went away"):
        stream_poses(np.repeat(poses(1), 600, axis=0), host="127.0.0.1", port=port, rate_hz=200)
    stop_after.join()


def test_an_idle_client_does_not_block_another() -> None:
    with TransformReceiver(0) as receiver, socket.create_connection(("127.0.0.1", receiver.port)) as idle:
        idle.sendall(pack_transform(np.eye(4), device_name="Idle")[:20])  # half a header, then nothing
        stream_poses(poses(3), host="127.0.0.1", port=receiver.port, rate_hz=100)
        wait_for(lambda: receiver.received == 3)
        got = take_all(receiver)
    assert {m.device_name for m in got} == {"ToolToTracker"} and len({m.source for m in got}) == 1
