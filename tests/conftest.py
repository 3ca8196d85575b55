"""Shared fixtures: the real scans in ../shared/data (skipped with a reason when absent), a loopback IGTL peer."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TWIN_SHARED_DATA", PROJECT_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of ../shared/data; tests needing it skip when it is absent (CI has it)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


def shared_path(*parts: str) -> Path:
    """A path inside ../shared/data, skipping the test when it is missing."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} is absent")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def igtl_server() -> Iterator[Any]:
    """A real pyigtl server on loopback (it installs SIGINT/SIGTERM handlers: restored afterwards)."""
    pyigtl = pytest.importorskip("pyigtl")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = pyigtl.OpenIGTLinkServer(port=free_port(), local_server=True)
    try:
        yield server
    finally:
        server.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
