"""The real 3D view needs an OpenGL display: one Xvfb for the session, app scripts run in a child Python.

The other tests in tests/ui run in-process on Qt's offscreen platform (no GL). A script given to
:func:`run_app_script` prints one line ``RESULT <json>``; the test asserts on that object.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """``:N`` of an Xvfb server started for the session; tests skip with the reason when it cannot start."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (make sysdeps installs it): the 3D view needs a GL display")
    read, write = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1400x1000x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{number}"
    proc.terminate()
    proc.wait(timeout=10)


def run_app_script(script: str, display: str, config_dir: Path, *args: str, timeout_s: float = 120) -> dict[str, Any]:
    """Run ``script`` in a fresh Python on ``display`` with Qt's xcb platform; returns its RESULT object."""
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb", "OPENBLAS_NUM_THREADS": "1",
           "TWIN_APP_NO_PROMPT": "1", "XDG_CONFIG_HOME": str(config_dir)}
    env.pop("TWIN_NO_3D", None)
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout_s)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-2000:]
    return json.loads(lines[-1][len("RESULT "):])
