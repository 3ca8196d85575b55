"""The 3D view with a real OpenGL context: Xvfb + Qt's xcb platform, in a child process.

The rest of tests/ui runs on the offscreen platform (no GL), so this test starts its own X server
and a fresh Python; it is skipped with the reason when Xvfb is not installed (``make sysdeps``).
"""

from __future__ import annotations

from pathlib import Path

from tests.ui.xcb import run_app_script

SCRIPT = r"""
import json, sys, time
import numpy as np
from tests.ui.conftest import phantom_volume, case_of
from tests.ui.xcb_window import shown_window, wait_for_3d
from ui.app import wait_until_idle
app, window = shown_window(case_of(phantom_volume()))
doc = window.document
doc.add_segment("tumour")
doc.apply_threshold("tumour", 250, 400)
window.segment_panel.build_surfaces()
wait_until_idle(window)
from workstation import plan_case
plan_case.add_trajectory(doc.case, "biopsy", (5.0, -22.0, 0.0), (5.0, -8.0, 0.0), tool_diameter_mm=3.0)
doc.plan_changed.emit()
view = wait_for_3d(app, window)
out = {"reason": view.reason, "actors": sorted(view.actors)}
if view.plotter is not None:
    rgb = view.grab_rgb().astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    green = (g > r + 40) & (g > b + 40)
    cyan = (b > r + 80) & (g > r + 80)  # the unchecked trajectory's tube
    out["cyan_pixels"] = int(cyan.sum())
    out["plan_actors"] = sorted(view.plan_actors)
    doc.set_visible(doc.label_map.segment("tumour").value, False)
    hidden = view.grab_rgb().astype(int)
    hr, hg, hb = hidden[..., 0], hidden[..., 1], hidden[..., 2]
    out["green_when_hidden"] = int(((hg > hr + 40) & (hg > hb + 40)).sum())
    doc.set_visible(doc.label_map.segment("tumour").value, True)
    from workstation import simulate_case
    record, _ = simulate_case.simulate(doc.case, segment="tumour", material="liver", fix=["plane:5,0,0:0,0,-1"],
                                       pushes=[((11.0, 0.0, 0.0), (-1.0, 0.0, 0.0))], size_mm=2.0, push_radius_mm=3.0)
    doc.simulation = record.name
    doc.meshes_changed.emit()
    out["simulation_actor"] = f"simulation:{record.name}" in view.actors
    out["scalar_bars"] = sorted(view.plotter.scalar_bars.keys())
    # Live co-rotational drag: the surface in the 3D view moves with the tissue.
    panel = window.mechanics_panel
    panel._fill_materials()
    panel.fix.setText("plane:1,0,0:-1,0,0")
    panel.radius.setValue(3.0)
    panel.size.setValue(2.0)
    doc.push_point = np.array([11.0, 0.0, 0.0])
    panel.toggle_live(True)
    wait_until_idle(window)
    panel.live_drag(np.array([0.0, -3.0, 0.0]))
    moved = np.asarray(view.live_surface.points) - np.asarray(doc.live.mesh.points_lps)
    out["live_max_moved_mm"] = float(np.linalg.norm(moved, axis=1).max())
    # Rehearsal: bookmarks restore a camera; the probe's eye stands at the entry; a snapshot is written.
    panel.toggle_live(False)
    rehearsal = window.rehearsal_panel
    rehearsal.standard("left")
    saved = view.camera_pose()
    rehearsal.save_view("bookmark")
    rehearsal.standard("superior")
    moved_away = float(np.linalg.norm(np.subtract(view.camera_pose().position_lps, saved.position_lps)))
    rehearsal.go_to("bookmark")
    back = float(np.linalg.norm(np.subtract(view.camera_pose().position_lps, saved.position_lps)))
    rehearsal.trajectory.setCurrentText("biopsy")
    rehearsal.probe()
    probe_at_entry = float(np.linalg.norm(np.subtract(view.camera_pose().position_lps, (5.0, -22.0, 0.0))))
    rehearsal.fly_through(n_frames=5)
    for _ in range(200):
        app.processEvents()
        if not rehearsal.timer.isActive():
            break
        time.sleep(0.01)
    fly = rehearsal.status.text()
    snap = rehearsal.snapshot(sys.argv[1] + ".snapshot.png")
    out.update(moved_away=moved_away, back=back, probe_at_entry=probe_at_entry,
               bookmarks=[r.name for r in doc.case.records_of("camera")], fly=fly,
               snapshot_bytes=snap.stat().st_size if snap else 0)
    rows, cols = np.nonzero(green)
    centre = [float(rows.mean()) / rgb.shape[0], float(cols.mean()) / rgb.shape[1]] if rows.size else None
    out.update(shape=list(rgb.shape), green_pixels=int(green.sum()), green_centre=centre)
    window.grab().save(sys.argv[1], "PNG")
print("RESULT " + json.dumps(out))
window.close()
"""


def test_surfaces_appear_in_the_3d_view_in_their_segment_colour(x_display: str, tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    result = run_app_script(SCRIPT, x_display, tmp_path, str(shot))
    assert result["reason"] is None, result
    assert len(result["actors"]) == 1 and result["actors"][0].endswith("-tumour"), result
    # The tumour surface (green, (0.565, 0.933, 0.565)) fills a visible patch near the middle of the view.
    assert result["green_pixels"] > 500, result
    row, col = result["green_centre"]
    assert 0.25 < row < 0.75 and 0.25 < col < 0.75, result
    assert shot.stat().st_size > 10000
    # The trajectory shows as a tube of its tool diameter; hiding the segment hides its surface.
    assert result["plan_actors"] == ["trajectory:biopsy"] and result["cyan_pixels"] > 50, result
    assert result["green_when_hidden"] < result["green_pixels"] / 20, result
    # A simulation result: the deformed surface coloured by von Mises stress with its scalar bar.
    assert result["simulation_actor"] and result["scalar_bars"] == ["von Mises stress (Pa)"], result
    assert 2.0 < result["live_max_moved_mm"] < 4.0, result
    assert result["moved_away"] > 10 and result["back"] < 1e-6 and result["bookmarks"] == ["bookmark"], result
    assert result["probe_at_entry"] < 1e-6 and result["fly"] == "fly-through done", result
    assert result["snapshot_bytes"] > 1000, result
