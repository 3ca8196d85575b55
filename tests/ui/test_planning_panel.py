"""Planning driven like a user: trajectories clicked in a slice, safety checked, an end dragged live."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog

from tests.ui.conftest import phantom_volume
from tests.ui.helpers import drag, point, wait_idle, window_with

TARGET = np.array([5.0, 0.0, 0.0])  # the centre of the phantom's sphere (the 'tumour')


def colour_kind(rgb: tuple[int, int, int]) -> str:
    r, g, b = rgb
    if g > r + 60 and g > b + 30:
        return "green"
    if r > g + 80 and r > b + 80:
        return "red"
    return "other"


def kinds_near(widget, at, radius: int = 2) -> set[str]:  # type: ignore[no-untyped-def]
    """Colour kinds of the pixels within ``radius`` of ``at`` (the line is 2 px wide, antialiased)."""
    image = widget.grab().toImage()
    return {colour_kind((c.red(), c.green(), c.blue())) for dx in range(-radius, radius + 1)
            for dy in range(-radius, radius + 1) for c in [image.pixelColor(at.x() + dx, at.y() + dy)]}


def test_place_check_and_drag_a_trajectory(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot, phantom_volume())
    doc, segments, planning, axial = window.document, window.segment_panel, window.planning_panel, window.views["axial"]
    doc.set_crosshair(TARGET)
    segments.lower.setValue(250.0)
    segments.upper.setValue(400.0)
    qtbot.mouseClick(segments.threshold_button, Qt.MouseButton.LeftButton)  # segment 'threshold': the sphere
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("vessel", True))
    qtbot.mouseClick(segments.add_button, Qt.MouseButton.LeftButton)
    QTest.keyClick(window, Qt.Key.Key_B)
    segments.brush.setValue(2.0)
    drag(axial, point(axial.widget_pos_of(np.array([-8.0, 12.0, 0.0]))),
         point(axial.widget_pos_of(np.array([-8.0, -8.0, 0.0]))))  # a vessel running anterior-posterior
    assert doc.label_map.mask("vessel").any()

    QTest.keyClick(window, Qt.Key.Key_T)
    assert axial.tool == "trajectory" and planning.trajectory_button.isChecked()
    entry = np.array([-16.0, 2.0, 0.0])  # on the far side of the vessel: the path crosses it
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(entry)))
    assert doc.pending_entry is not None
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(TARGET)))
    (trajectory,) = doc.case.plan.trajectories
    assert np.linalg.norm(np.subtract(trajectory.entry_lps, entry)) < 1.5
    assert np.linalg.norm(np.subtract(trajectory.target_lps, TARGET)) < 1.5
    assert trajectory.tool_diameter_mm == planning.diameter.value()

    qtbot.mouseClick(planning.check_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    meta = doc.safety(trajectory.name)
    assert meta is not None and not meta["safe"] and meta["violations"] == ["vessel"]
    assert "UNSAFE" in planning.result_label.text()
    # A point on the line between the vessel and the target (not under the vessel's overlay).
    middle = np.asarray(trajectory.entry_lps) + 0.65 * np.subtract(trajectory.target_lps, trajectory.entry_lps)
    assert "red" in kinds_near(axial, point(axial.widget_pos_of(middle)))

    # Drag the entry to the other side: the path no longer meets the vessel; re-checked live, drawn green.
    new_entry = np.array([16.0, 12.0, 0.0])
    drag(axial, point(axial.widget_pos_of(np.asarray(trajectory.entry_lps))), point(axial.widget_pos_of(new_entry)))
    (moved,) = doc.case.plan.trajectories
    assert np.linalg.norm(np.subtract(moved.entry_lps, new_entry)) < 1.5
    meta = doc.safety(moved.name)
    assert meta["safe"] and meta["min_clearance_mm"] > 2.0
    middle = (np.asarray(moved.entry_lps) + np.asarray(moved.target_lps)) / 2
    assert "green" in kinds_near(axial, point(axial.widget_pos_of(middle)))
    assert "red" not in kinds_near(axial, point(axial.widget_pos_of(middle)))
    # The clearance is the distance from the tool's axis to the vessel's surface minus the tool radius.
    vessel_voxels = np.argwhere(doc.label_map.mask("vessel"))[:, ::-1]
    vessel_lps = doc.volume.ijk_to_lps_points(vessel_voxels)
    a, b = np.asarray(moved.entry_lps), np.asarray(moved.target_lps)
    t = np.clip((vessel_lps - a) @ (b - a) / ((b - a) @ (b - a)), 0, 1)
    axis_distance = np.linalg.norm(vessel_lps - (a + t[:, None] * (b - a)), axis=1).min()
    assert abs(meta["min_clearance_mm"] - (axis_distance - moved.tool_diameter_mm / 2)) < 1.6

    QTest.keyClick(window, Qt.Key.Key_L)
    assert axial.tool == "landmark", axial.tool
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(np.array([0.0, -10.0, 0.0]))))
    assert [lm.name for lm in doc.case.plan.landmarks] == ["landmark_1"]
    planning.select(moved.name)
    qtbot.mouseClick(planning.remove_button, Qt.MouseButton.LeftButton)
    assert not doc.case.plan.trajectories and doc.safety(moved.name) is None
    assert planning.table.rowCount() == 1


def test_export_the_plan_as_json_and_slicer_markups(qtbot, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import json

    from PySide6.QtWidgets import QFileDialog

    window = window_with(qtbot, phantom_volume())
    axial = window.views["axial"]
    doc = window.document
    doc.set_crosshair(TARGET)
    QTest.keyClick(window, Qt.Key.Key_T)
    for lps in (np.array([-16.0, 2.0, 0.0]), TARGET):
        qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(lps)))
    (trajectory,) = doc.case.plan.trajectories
    for kind, name in (("json", "plan.json"), ("markups", "plan.mrk.json")):
        target = tmp_path / name
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, t=target, **k: (str(t), ""))
        next(a for a in window.actions() if a.objectName() == f"export-plan-{kind}").trigger()
        assert target.is_file(), kind
    document = json.loads((tmp_path / "plan.json").read_text())
    (exported,) = document["trajectories"]
    assert exported["name"] == trajectory.name
    np.testing.assert_allclose(exported["entry_mm"], trajectory.entry_lps)
    np.testing.assert_allclose(exported["target_mm"], trajectory.target_lps)
    markups = json.loads((tmp_path / "plan.mrk.json").read_text())
    assert "markups" in markups and trajectory.name in json.dumps(markups)


def test_registration_dialog_pairs_landmarks_and_reports_fre_and_tre(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QDialogButtonBox

    window = window_with(qtbot, phantom_volume())
    doc, planning, axial = window.document, window.planning_panel, window.views["axial"]
    doc.set_crosshair(TARGET)
    QTest.keyClick(window, Qt.Key.Key_L)
    for lps in ((-15.0, -15.0, 0.0), (15.0, -15.0, 0.0), (15.0, 15.0, 0.0), (-15.0, 15.0, 0.0)):
        qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(np.array(lps))))
    QTest.keyClick(window, Qt.Key.Key_T)
    for lps in (np.array([-16.0, 2.0, 0.0]), TARGET):
        qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(lps)))
    assert len(doc.case.plan.landmarks) == 4
    qtbot.mouseClick(planning.register_button, Qt.MouseButton.LeftButton)
    dialog = planning.registration_dialog
    assert dialog.table.rowCount() == 4
    # The patient (tracker) points: the image points rotated 30 degrees about z and shifted.
    angle = np.radians(30.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    image = np.array([lm.position_lps for lm in doc.case.plan.landmarks])
    dialog.set_patient_points(image @ rotation.T + (100.0, -50.0, 20.0))
    dialog.fle.setValue(0.5)
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Apply), Qt.MouseButton.LeftButton)
    registration = doc.case.registrations["image-to-patient"]
    np.testing.assert_allclose(registration.matrix[:3, :3], rotation, atol=1e-3)
    np.testing.assert_allclose(registration.matrix[:3, 3], (100.0, -50.0, 20.0), atol=0.01)
    assert registration.fre_mm < 0.01
    assert "FRE 0.00 mm" in dialog.summary.text() and "predicted TRE at targets: trajectory_1" in dialog.summary.text()
    assert float(dialog.table.item(0, 7).text()) < 0.01
    # The predicted TRE at the target follows Fitzpatrick-West from FLE 0.5 mm: below the FLE for 4 fiducials
    # around a central target.
    assert 0.1 < registration.predicted_tre_mm[0] < 0.5


def test_resection_plane_from_two_clicks_reports_removed_volumes(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot, phantom_volume())
    doc, planning = window.document, window.planning_panel
    axial, coronal = window.views["axial"], window.views["coronal"]
    doc.set_crosshair(TARGET)
    doc.add_segment("tumour")
    doc.apply_threshold("tumour", 250.0, 400.0)
    QTest.keyClick(window, Qt.Key.Key_P)
    assert axial.tool == "plane" and planning.plane_button.isChecked()
    for lps in ((5.0, -20.0, 0.0), (5.0, 20.0, 0.0)):  # a cut along y through the sphere's centre, seen axially
        qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(axial.widget_pos_of(np.array(lps))))
    (plane,) = doc.case.plan.resection_planes
    np.testing.assert_allclose(plane.normal_lps, (1.0, 0.0, 0.0), atol=0.05)
    meta = doc.safety(plane.name)
    removed, total = meta["removed_ml"]["tumour"], meta["total_ml"]["tumour"]
    # The removed side (x below the plane) holds the sphere's voxel centres there: about half of it (the
    # centre column lies within a click's rounding of the plane).
    sphere = doc.label_map.mask("tumour")
    k, j, i = np.nonzero(sphere)
    x = doc.volume.ijk_to_lps_points(np.stack([i, j, k], axis=1))[:, 0]
    expected = (x < plane.origin_lps[0] - 1e-9).sum() * doc.volume.voxel_volume_mm3 / 1000
    assert abs(removed - expected) < 0.002 and 0.4 * total < removed < 0.6 * total
    assert "removes tumour" in planning.result_label.text()
    # The cut shows as a dashed pink line in the coronal view too (x = 5 mm there as well).
    image = coronal.grab().toImage()
    column = int(round(coronal.widget_pos_of(np.array([5.0, 0.0, 0.0])).x()))
    pink = [image.pixelColor(column + dx, y) for dx in (-1, 0, 1) for y in range(40, coronal.height() - 40)]
    assert any(c.red() > 200 and c.blue() > 180 and c.green() < 160 for c in pink)
