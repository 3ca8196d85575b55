"""The live tool in the real 3D view (Xvfb + xcb, in a child process): green at its pose, red in alarm."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, os, threading, time
import numpy as np
os.environ["QT_QPA_PLATFORM"] = "xcb"
from tests.workstation.live.phantom import AORTA_CENTER, AORTA_RADIUS, sphere
from workstation.live.igtl_stream import stream_poses
from workstation.live.tracker_sim import simulate_execution
from workstation.model import Case, Plan, Trajectory, Volume
from ui.app import application
from ui.main_window import MainWindow

case = Case(name="live-3d")
case.add_mesh(sphere("aorta", tuple(AORTA_CENTER), AORTA_RADIUS))
case.set_plan(Plan(trajectories=(Trajectory("t1", (0.0, 0.0, 0.0), (0.0, 0.0, 100.0), tool_diameter_mm=2.0),)))
affine = np.diag([4.0, 4.0, 4.0, 1.0])
affine[:3, 3] = (-60.0, -60.0, -20.0)
case.add_volume(Volume(array=np.full((40, 30, 30), -50, dtype=np.int16), ijk_to_lps=affine, modality="CT"))
app = application()
window = MainWindow()
window.resize(1200, 800)
window.show()
window.document.set_case(case)
view = window.view3d
for _ in range(300):
    app.processEvents()
    if view.ready:
        break
    time.sleep(0.02)
out = {"reason": view.reason}
panel = window.live_panel
panel.port.setValue(0)

def run(offset):
    execution = simulate_execution(case.plan.trajectories[0], rate_hz=60, duration_s=0.5, offset_mm=offset)
    thread = threading.Thread(target=stream_poses, args=(execution.poses,),
                              kwargs={"host": "127.0.0.1", "port": panel.listening_port, "rate_hz": 60})
    thread.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (thread.is_alive() or panel.state is None or panel.state.depth_mm < 99):
        app.processEvents()
        time.sleep(0.01)
    view.plotter.view_vector((0.0, -1.0, 0.0), viewup=(0.0, 0.0, 1.0))
    view.plotter.reset_camera()
    view.plotter.render()
    app.processEvents()
    rgb = view.grab_rgb().astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return {"green": int(((g > r + 80) & (g > b + 80)).sum()), "red": int(((r > g + 80) & (r > b + 80)).sum()),
            "alarm": panel.alarm}

if view.plotter is not None:
    panel.start_listening()
    for _ in range(500):
        app.processEvents()
        if panel.receiver is not None:
            break
        time.sleep(0.01)
    out["safe"] = run((6.0, 0.0, 0.0))
    out["breach"] = run((8.5, 0.0, 0.0))
    panel.stop_listening()
    app.processEvents()
    out["stopped_has_actor"] = "live-tool" in view.plotter.actors
print("RESULT " + json.dumps(out))
window.close()
"""


@pytest.fixture(scope="module")
def x_display() -> Iterator[str]:
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


def test_live_tool_in_the_3d_view(x_display: str, tmp_path: Path) -> None:
    env = {**os.environ, "DISPLAY": x_display, "QT_QPA_PLATFORM": "xcb", "OPENBLAS_NUM_THREADS": "1",
           "TWIN_APP_NO_PROMPT": "1", "XDG_CONFIG_HOME": str(tmp_path)}
    env.pop("TWIN_NO_3D", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-2000:]
    result = json.loads(lines[-1][len("RESULT "):])
    if result["reason"] is not None:
        pytest.skip(f"no 3D view on this display: {result['reason']}")
    safe, breach = result["safe"], result["breach"]
    # the tool is the only green object (the planned tube is cyan, the aorta beige); axes markers add some red
    assert not safe["alarm"] and safe["green"] > 300, result
    assert breach["alarm"] and breach["red"] > safe["red"] + 300 and breach["green"] < safe["green"] / 10, result
    assert not result["stopped_has_actor"]
