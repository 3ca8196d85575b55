"""The live tool in the real 3D view (Xvfb + xcb, in a child process): green at its pose, red in alarm."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.xcb import run_app_script

SCRIPT = r"""
import json, threading, time
from tests.ui.xcb_window import aorta_case, shown_window, wait_for_3d
from workstation.live.igtl_stream import stream_poses
from workstation.live.tracker_sim import simulate_execution

case = aorta_case("live-3d")
app, window = shown_window(case)
view = wait_for_3d(app, window)
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


def test_live_tool_in_the_3d_view(x_display: str, tmp_path: Path) -> None:
    result = run_app_script(SCRIPT, x_display, tmp_path)
    if result["reason"] is not None:
        pytest.skip(f"no 3D view on this display: {result['reason']}")
    safe, breach = result["safe"], result["breach"]
    # the tool is the only green object (the planned tube is cyan, the aorta beige); axes markers add some red
    assert not safe["alarm"] and safe["green"] > 300, result
    assert breach["alarm"] and breach["red"] > safe["red"] + 300 and breach["green"] < safe["green"] / 10, result
    assert not result["stopped_has_actor"]
