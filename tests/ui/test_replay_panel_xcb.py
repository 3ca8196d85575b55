"""The replayed tool in the real 3D view (Xvfb + xcb, in a child process): amber at its pose, red in alarm."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.xcb import run_app_script

SCRIPT = r"""
import json
from tests.ui.xcb_window import aorta_case, shown_window, wait_for_3d
from tests.ui.test_replay_panel import record_session
from workstation.model import Case

case = aorta_case("replay-3d")
case.add_record(record_session(case, "trainee_1"))
app, window = shown_window(case)
view = wait_for_3d(app, window)
out = {"reason": view.reason}
panel = window.replay_panel

def at(t_s):
    panel.seek(t_s)
    view.plotter.view_vector((0.0, -1.0, 0.0), viewup=(0.0, 0.0, 1.0))
    view.plotter.reset_camera()
    view.plotter.render()
    app.processEvents()
    rgb = view.grab_rgb().astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    amber = (r > 180) & (g > 110) & (g < r - 30) & (b < 90)
    return {"amber": int(amber.sum()), "red": int(((r > g + 80) & (r > b + 80)).sum()), "alarm": panel.state.alarm,
            "has_actor": "replay-tool" in view.plotter.actors}

if view.plotter is not None:
    panel.select_session("trainee_1")
    out["entry"] = at(0.2)
    out["alarm"] = at(2.0)
    other = Case(name="no-session")
    other.add_volume(case.volume())
    window.document.set_case(other)
    app.processEvents()
    out["cleared_has_actor"] = "replay-tool" in view.plotter.actors
print("RESULT " + json.dumps(out))
window.close()
"""


def test_replayed_tool_in_the_3d_view(x_display: str, tmp_path: Path) -> None:
    result = run_app_script(SCRIPT, x_display, tmp_path)
    if result["reason"] is not None:
        pytest.skip(f"no 3D view on this display: {result['reason']}")
    entry, alarm = result["entry"], result["alarm"]
    assert entry["has_actor"] and not entry["alarm"] and entry["amber"] > 300, result
    assert alarm["alarm"] and alarm["red"] > entry["red"] + 300 and alarm["amber"] < entry["amber"] / 10, result
    assert not result["cleared_has_actor"]
