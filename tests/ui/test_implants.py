"""Implants driven like a user: a screw along a trajectory and by two clicks; drawn, checked, removed, saved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import phantom_volume
from tests.ui.helpers import point, wait_idle, window_with
from tests.ui.xcb import run_app_script
from workstation.export.tool_pose import trajectory_pose

TARGET = np.array([16.0, 0.0, 0.0])  # beyond the phantom's sphere (centre (5, 0, 0), radius 6 mm) on x
ENTRY = np.array([-16.0, 0.0, 0.0])


def is_violet(rgb: tuple[int, int, int]) -> bool:
    """The implant fill (170, 110, 255) at alpha 200 over any grey."""
    r, g, b = rgb
    return b > g + 80 and r > g + 25


def rgb_at(widget, at) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    c = widget.grab().toImage().pixelColor(at)
    return c.red(), c.green(), c.blue()


def test_implant_along_a_trajectory_checked_removed_and_saved(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from workstation import plan_case
    from workstation.bundle import load_case, save_case
    from workstation.model.case import Case

    window = window_with(qtbot, phantom_volume())
    doc, planning, axial, coronal = window.document, window.planning_panel, window.views["axial"], window.views[
        "coronal"]
    doc.set_crosshair((5.0, 0.0, 0.0))
    doc.add_segment("vessel")
    doc.apply_threshold("vessel", 250.0, 400.0)  # the sphere: a structure the screw must keep away from
    QTest.keyClick(window, Qt.Key.Key_T)
    for lps in (ENTRY, TARGET):
        qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(lps)))
    (trajectory,) = doc.case.plan.trajectories
    planning.implants.diameter.setValue(6.0)
    planning.implants.length.setValue(20.0)
    qtbot.mouseClick(planning.implants.on_trajectory_button, Qt.MouseButton.LeftButton)
    (screw,) = doc.case.plan.implants
    pose = np.asarray(screw.pose_lps)
    # tip at the target, +z the insertion direction: the tool pose of the export, to rounding
    assert np.linalg.norm(pose[:3, 3] - trajectory.target_lps) < 1e-6
    np.testing.assert_allclose(pose, trajectory_pose(trajectory.entry_lps, trajectory.target_lps), atol=1e-12)
    direction = np.subtract(trajectory.target_lps, trajectory.entry_lps)
    np.testing.assert_allclose(pose[:3, 2], direction / np.linalg.norm(direction), atol=1e-12)
    assert (screw.kind, screw.diameter_mm, screw.length_mm) == ("pedicle_screw", 6.0, 20.0)
    table = planning.table
    rows = {table.item(r, 1).text(): table.item(r, 2).text() for r in range(table.rowCount())}
    assert rows[screw.name] == "pedicle_screw: diameter 6 mm, length 20 mm"

    # drawn in the slice views: violet inside its diameter, not beyond its head (20 mm back from the tip)
    head, tip = plan_case.implant_ends(screw)
    inside = tip + (head - tip) * 0.3 + (0.0, 2.0, 0.0)  # 2 mm off the axis: within the 3 mm radius
    assert is_violet(rgb_at(axial, point(axial.widget_pos_of(inside))))
    assert is_violet(rgb_at(coronal, point(coronal.widget_pos_of(tip + (head - tip) * 0.5 + (0.0, 0.0, 2.0)))))
    assert not is_violet(rgb_at(axial, point(axial.widget_pos_of(head + (head - tip) * 0.2))))
    assert not is_violet(rgb_at(axial, point(axial.widget_pos_of(tip + (0.0, 6.0, 0.0)))))  # beyond the radius

    # safety: the screw (head at x = -4) runs through the sphere (x from -1 to 11)
    planning.select(screw.name)
    qtbot.mouseClick(planning.check_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    meta = doc.safety(screw.name)
    assert meta is not None and not meta["safe"] and meta["violations"] == ["vessel"]
    assert meta["tool_diameter_mm"] == 6.0
    # The prepared checker makes the next placement live: a shorter screw ending before the sphere is safe
    # when its clearance (head-tip capsule to the sphere's surface, minus 3 mm) exceeds the 2 mm margin.
    planning.implants.length.setValue(4.0)
    plan_case.add_trajectory(doc.case, "short", (16.0, 14.0, 0.0), (16.0, 8.0, 0.0), tool_diameter_mm=2.0)
    doc.plan_changed.emit()
    planning.select("short")
    qtbot.mouseClick(planning.implants.on_trajectory_button, Qt.MouseButton.LeftButton)
    live = doc.safety("implant_2")
    # analytic: the capsule's axis runs x = 16 from y = 12 (head) to y = 8 (tip at the target); its point nearest
    # the sphere's centre is the tip: 13.6 mm away; minus the 6 mm sphere radius and the 3 mm screw radius
    expected = np.linalg.norm(np.array([11.0, 8.0])) - 6.0 - 3.0
    assert live is not None and live["safe"] and abs(live["min_clearance_mm"] - expected) < 1.0

    saved = tmp_path / "case"
    save_case(doc.case, saved)
    loaded: Case = load_case(saved)
    assert [(i.name, i.kind, i.diameter_mm, i.length_mm) for i in loaded.plan.implants] == [
        (i.name, i.kind, i.diameter_mm, i.length_mm) for i in doc.case.plan.implants]
    np.testing.assert_allclose(np.asarray(loaded.plan.implants[0].pose_lps), pose, atol=1e-12)

    planning.select(screw.name)
    qtbot.mouseClick(planning.remove_button, Qt.MouseButton.LeftButton)
    assert [i.name for i in doc.case.plan.implants] == ["implant_2"] and doc.safety(screw.name) is None
    assert not is_violet(rgb_at(axial, point(axial.widget_pos_of(inside))))


def test_implant_by_two_clicks_and_its_3d_body(qtbot) -> None:  # type: ignore[no-untyped-def]
    from ui.implant_tools import implant_mesh
    from workstation import plan_case

    window = window_with(qtbot, phantom_volume())
    doc, planning, axial = window.document, window.planning_panel, window.views["axial"]
    doc.set_crosshair((0.0, 0.0, 0.0))
    planning.implants.diameter.setValue(5.0)
    qtbot.mouseClick(planning.implants.click_button, Qt.MouseButton.LeftButton)
    assert axial.tool == "implant"
    head_at, tip_at = point(axial.widget_pos_of(np.array([-12.0, -15.0, 0.0]))), point(
        axial.widget_pos_of(np.array([8.0, 12.0, 0.0])))
    head_lps, tip_lps = axial.lps_at(head_at), axial.lps_at(tip_at)
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=head_at)
    assert doc.pending_entry is not None and not doc.case.plan.implants
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=tip_at)
    (screw,) = doc.case.plan.implants
    assert doc.pending_entry is None
    head, tip = plan_case.implant_ends(screw)
    assert np.linalg.norm(tip - tip_lps) < 1e-6 and np.linalg.norm(head - head_lps) < 1e-6
    axis = np.asarray(screw.pose_lps)[:3, 2]
    np.testing.assert_allclose(axis, (tip_lps - head_lps) / np.linalg.norm(tip_lps - head_lps), atol=1e-9)
    assert abs(screw.length_mm - np.linalg.norm(tip_lps - head_lps)) < 1e-9 and screw.diameter_mm == 5.0
    middle = (head + tip) / 2
    assert is_violet(rgb_at(axial, point(axial.widget_pos_of(middle))))

    # the 3D body (what the 3D view draws): a cylinder of radius 2.5 mm from head to tip
    points = np.asarray(implant_mesh(screw).points)
    along = (points - head) @ axis
    radial = np.linalg.norm((points - head) - along[:, None] * axis, axis=1)
    assert abs(along.min()) < 1e-4 and abs(along.max() - screw.length_mm) < 1e-4
    assert radial.max() < 2.5 + 1e-4 and radial.max() > 2.4


XCB_SCRIPT = r"""
import json
from tests.ui.conftest import phantom_volume, case_of
from tests.ui.xcb_window import shown_window, wait_for_3d
from workstation import plan_case
app, window = shown_window(case_of(phantom_volume()), size=(1000, 700))
doc = window.document
plan_case.add_implant(doc.case, "screw", head_lps=(-15.0, 0.0, 0.0), tip_lps=(15.0, 0.0, 0.0), diameter_mm=8.0)
doc.plan_changed.emit()
view = wait_for_3d(app, window)
out = {"reason": view.reason}
if view.plotter is not None:
    view.refresh()
    def violet():
        rgb = view.grab_rgb().astype(int)
        r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
        return int(((b > g + 60) & (r > g + 30)).sum())
    out["plan_actors"] = sorted(view.plan_actors)
    out["violet_with"] = violet()
    plan_case.remove_item(doc.case, "screw")
    doc.plan_changed.emit()
    out["violet_without"] = violet()
print("RESULT " + json.dumps(out))
window.close()
"""


def test_implant_drawn_in_the_3d_view(x_display: str, tmp_path: Path) -> None:
    """Needs a GL display: Xvfb + xcb in a child process (skipped without Xvfb)."""
    result = run_app_script(XCB_SCRIPT, x_display, tmp_path)
    assert result["reason"] is None, result
    assert result["plan_actors"] == ["implant:screw"], result
    assert result["violet_with"] > 300 and result["violet_without"] < 10, result
