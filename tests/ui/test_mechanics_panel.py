"""Mechanics driven like a user: mesh a segment, hold it by a plane, push it at a clicked point, solve."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from tests.ui.conftest import phantom_volume
from tests.ui.helpers import pixel_rgb, point, wait_idle, window_with

CENTRE = np.array([5.0, 0.0, 0.0])  # the phantom's 6 mm sphere


def test_mesh_fix_push_and_simulate_the_sphere(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot, phantom_volume())
    doc, mech, axial = window.document, window.mechanics_panel, window.views["axial"]
    doc.set_crosshair(CENTRE)
    doc.add_segment("tumour")
    doc.apply_threshold("tumour", 250.0, 400.0)
    window.mechanics_dock.raise_()  # the user opens the Mechanics tab
    qtbot.waitUntil(lambda: mech.material.count() > 0)
    assert mech.segment.currentText() == "tumour"
    mech.size.setValue(2.0)
    mech.material.setCurrentText("liver")
    qtbot.mouseClick(mech.mesh_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    mesh = doc.case.tet_meshes["tet-tumour"]
    assert mesh.n_points > 20 and "tets" in mech.report.text() and "inverted 0" in mech.report.text()
    # Held on the inferior half (below the axial plane through the crosshair), pushed 1 mm to the right (-x).
    qtbot.mouseClick(mech.fix_plane_button, Qt.MouseButton.LeftButton)
    assert mech.fix.text() == "plane:5.0,0.0,0.0:0,0,-1"
    qtbot.mouseClick(mech.push_button, Qt.MouseButton.LeftButton)
    assert axial.tool == "push"
    surface_point = CENTRE + (6.0, 0.0, 0.0)
    at = point(axial.widget_pos_of(surface_point))
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=at)
    assert np.linalg.norm(doc.push_point - surface_point) < 1.0
    r, g, b = pixel_rgb(axial, at + type(at)(5, 5))  # the magenta cross marks the push point
    assert r > 200 and b > 200 and g < 120
    mech.push[0].setValue(-1.0)
    mech.radius.setValue(3.0)
    qtbot.mouseClick(mech.simulate_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    (record,) = doc.case.records_of("simulation")
    assert record.meta["converged"] and record.meta["tet_mesh_id"] == "tet-tumour"
    assert abs(record.meta["max_displacement_mm"] - 1.0) < 1e-6  # the prescribed push is the largest motion
    assert record.meta["max_von_mises_pa"] > 0 and doc.simulation == record.name
    assert "converged" in mech.report.text() and "kPa" in mech.report.text()
    assert record.meta["extra"]["fix"] == ["plane:5.0,0.0,0.0:0,0,-1"]


def test_simulate_without_a_push_point_says_what_to_do(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    window = window_with(qtbot, phantom_volume())
    window.document.add_segment("tumour")
    qtbot.mouseClick(window.mechanics_panel.simulate_button, Qt.MouseButton.LeftButton)
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1 and "Place push point" in boxes[0].text()


def test_live_drag_moves_the_tissue_under_the_tool(qtbot) -> None:  # type: ignore[no-untyped-def]
    from tests.ui.helpers import drag

    window = window_with(qtbot, phantom_volume())
    doc, mech, axial = window.document, window.mechanics_panel, window.views["axial"]
    doc.set_crosshair(CENTRE)
    doc.add_segment("tumour")
    doc.apply_threshold("tumour", 250.0, 400.0)
    window.mechanics_dock.raise_()
    mech.size.setValue(2.0)
    mech.radius.setValue(3.0)
    mech.fix.setText("plane:1,0,0:-1,0,0")  # held on the patient's-right part (x < 1 mm)
    qtbot.mouseClick(mech.push_button, Qt.MouseButton.LeftButton)
    grab = CENTRE + (6.0, 0.0, 0.0)
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(grab)))
    qtbot.mouseClick(mech.live_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    live = doc.live
    assert live is not None and axial.tool == "live" and mech.live_button.isChecked()
    # Drag the tool 3 mm anterior (-y) in the axial view: handle nodes follow exactly, held nodes stay, the
    # tissue in between moves part of the way (co-rotational implicit steps).
    drag(axial, point(axial.widget_pos_of(grab)), point(axial.widget_pos_of(grab + (0.0, -3.0, 0.0))), steps=4)
    u = live.displacement_mm
    handles = live.simulation.handles
    assert np.allclose(u[handles].mean(axis=0), (0.0, -3.0, 0.0), atol=0.8)
    x = np.asarray(live.mesh.points_lps)[:, 0]
    held = x < 1.0
    assert np.abs(u[held]).max() < 1e-6
    middle = (x > 3.0) & (x < 7.0)
    moved = -u[middle, 1]
    assert moved.max() > 0.3 and moved.max() < 3.0 + 0.8
    assert "tissue force" in mech.report.text()
    qtbot.mouseClick(mech.live_button, Qt.MouseButton.LeftButton)  # stop
    assert doc.live is None and axial.tool == "navigate"


def test_the_mesher_is_chosen_in_the_panel(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot, phantom_volume())
    doc, mech = window.document, window.mechanics_panel
    doc.add_segment("tumour")
    doc.apply_threshold("tumour", 250.0, 400.0)
    mech.size.setValue(3.0)
    mech.mesher.setCurrentIndex(mech.mesher.findData("ftetwild"))
    qtbot.mouseClick(mech.mesh_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    mesh = doc.case.tet_meshes["tet-tumour"]
    assert mesh.provenance["meshing"]["mesher"] == "fTetWild" and "inverted 0" in mech.report.text()
