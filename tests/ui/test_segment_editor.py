"""The segment editor driven like a user: paint/erase, undo/redo, threshold preview, presets, grow, surfaces."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog

from tests.ui.conftest import case_of, phantom_volume
from tests.ui.helpers import drag, grab_rgb, pixel_rgb, point, wait_idle, window_with
from ui import slicing
from ui.document import SEED_BACKGROUND

SPHERE_LPS = np.array([5.0, 0.0, 0.0])


@pytest.fixture
def window(qtbot, monkeypatch):  # type: ignore[no-untyped-def]
    window = window_with(qtbot, phantom_volume())
    window.document.set_crosshair(SPHERE_LPS)
    window.document.set_window(40.0, 400.0)
    names = iter(["lesion", "second"])
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: (next(names), True))
    return window


def turned_phantom(axes: str, degrees: tuple[float, ...]):  # type: ignore[no-untyped-def]
    """The phantom volume with its axes turned (scipy Euler angles, degrees) about its origin."""
    from scipy.spatial.transform import Rotation

    from workstation.model.volume import Volume

    aligned = phantom_volume()
    affine = np.array(aligned.ijk_to_lps, dtype=float)
    affine[:3, :3] = Rotation.from_euler(axes, degrees, degrees=True).as_matrix() @ affine[:3, :3]
    return Volume(array=aligned.array, ijk_to_lps=affine, modality="CT")


def sphere_truth(volume):  # type: ignore[no-untyped-def]
    return volume.array == 300


def expected_blend(gray: int, rgb: tuple[float, float, float], opacity: float) -> np.ndarray:
    return gray * (1 - opacity) + np.asarray(rgb) * 255 * opacity


def test_paint_shows_the_segment_colour_and_undo_redo_restore(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    assert panel.current_segment() == "lesion"
    segment = doc.label_map.segment("lesion")
    panel.brush.setValue(3.0)
    QTest.keyClick(window, Qt.Key.Key_B)  # paint brush
    assert panel.current_tool() == "paint" and axial.tool == "paint"
    start_lps = np.array([-8.0, 6.0, SPHERE_LPS[2]])
    end_lps = np.array([-2.0, 6.0, SPHERE_LPS[2]])
    drag(axial, point(axial.widget_pos_of(start_lps)), point(axial.widget_pos_of(end_lps)))
    painted = doc.label_map.array == segment.value
    volume = doc.volume
    # Every voxel within 3 mm of the stroke's points is painted; nothing farther than 3 mm + a pixel step.
    for lps in (start_lps, end_lps, (start_lps + end_lps) / 2):
        i, j, k = np.rint(volume.lps_to_ijk_points(lps)).astype(int)
        assert painted[k, j, i]
    k, j, i = np.nonzero(painted)
    centres = volume.ijk_to_lps_points(np.stack([i, j, k], axis=1))
    along = np.clip(centres[:, 0], start_lps[0], end_lps[0])
    distance = np.linalg.norm(centres - np.stack([along, np.full_like(along, 6.0), np.full_like(along, 0.0)], 1),
                              axis=1)
    assert distance.max() <= 3.0 + 1.1
    # The user sees the segment's colour blended over the grey at the painted pixel.
    at = point(axial.widget_pos_of((start_lps + end_lps) / 2))
    gray = int(slicing.window_to_gray(np.array([-50.0]), doc.level, doc.width)[0])
    seen = np.array(pixel_rgb(axial, at))
    np.testing.assert_allclose(seen, expected_blend(gray, segment.color_rgb, 0.5), atol=3)
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not (doc.label_map.array == segment.value).any()
    assert tuple(pixel_rgb(axial, at)) == (gray, gray, gray)
    QTest.keyClick(window, Qt.Key.Key_Y, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.label_map.array == segment.value, painted)
    # Erase half of it with the erase brush.
    QTest.keyClick(window, Qt.Key.Key_E)
    drag(axial, point(axial.widget_pos_of(start_lps)), point(axial.widget_pos_of(start_lps + (1.0, 0, 0))))
    left = doc.label_map.array == segment.value
    assert 0 < left.sum() < painted.sum()
    i, j, k = np.rint(volume.lps_to_ijk_points(start_lps)).astype(int)
    assert not left[k, j, i]
    # Hide it: the grey comes back; show it at full opacity: the pure colour.
    i, j, k = np.rint(volume.lps_to_ijk_points(end_lps)).astype(int)
    assert left[k, j, i]
    end_at = point(axial.widget_pos_of(end_lps))
    panel.table.cellWidget(0, 0).setChecked(False)
    assert tuple(pixel_rgb(axial, end_at)) == (gray, gray, gray)
    panel.table.cellWidget(0, 0).setChecked(True)
    panel.table.cellWidget(0, 3).setValue(1.0)
    np.testing.assert_allclose(pixel_rgb(axial, end_at), np.asarray(segment.color_rgb) * 255, atol=2)


def test_threshold_live_preview_then_apply(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    for box, value in ((panel.lower, "250"), (panel.upper, "400")):
        box.lineEdit().selectAll()
        QTest.keyClicks(box.lineEdit(), value)
        QTest.keyClick(box.lineEdit(), Qt.Key.Key_Enter)
    qtbot.mouseClick(panel.preview, Qt.MouseButton.LeftButton)
    assert panel.preview.isChecked()
    np.testing.assert_array_equal(doc.preview_mask, sphere_truth(doc.volume))
    r, _, b = pixel_rgb(axial, point(axial.widget_pos_of(SPHERE_LPS)))
    assert b > r + 40  # the blue preview tint over the sphere
    qtbot.mouseClick(panel.threshold_button, Qt.MouseButton.LeftButton)
    assert panel.current_segment() == "threshold" and doc.preview_mask is None
    np.testing.assert_array_equal(doc.label_map.mask("threshold"), sphere_truth(doc.volume))


def test_preset_runs_in_a_worker_and_statistics_show_it(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc, panel = window.document, window.segment_panel
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("soft_tissue"))
    qtbot.mouseClick(panel.preset_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    mask = doc.label_map.mask("soft_tissue")
    hu = doc.volume.array
    assert mask.any() and np.all((hu[mask] >= -100) & (hu[mask] <= 200))
    assert doc.history.can_undo()
    qtbot.mouseClick(panel.stats_button, Qt.MouseButton.LeftButton)
    table = panel.stats_dialog.findChild(type(panel.table), "statistics-table")
    assert table.rowCount() == 1 and table.item(0, 0).text() == "soft_tissue"
    voxel_ml = doc.volume.voxel_volume_mm3 / 1000
    assert float(table.item(0, 2).text()) == pytest.approx(mask.sum() * voxel_ml, abs=0.01)


def test_grow_from_seed_strokes_finds_the_sphere_and_surfaces_are_built(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    panel.brush.setValue(2.0)
    QTest.keyClick(window, Qt.Key.Key_G)  # seed strokes of the selected segment
    drag(axial, point(axial.widget_pos_of(SPHERE_LPS + (-2, 0, 0))), point(axial.widget_pos_of(SPHERE_LPS + (2, 0, 0))))
    QTest.keyClick(window, Qt.Key.Key_G, Qt.KeyboardModifier.ShiftModifier)  # background strokes
    assert panel.current_tool() == "seed_background"
    for a, b in (((-15, 12, 0), (15, 12, 0)), ((-5, -10, 0), (-5, 10, 0))):
        drag(axial, point(axial.widget_pos_of(np.array(a, float))), point(axial.widget_pos_of(np.array(b, float))))
    # Strokes in the other views too, beside the sphere from top to bottom.
    for plane, offset in (("coronal", (10.0, 0.0, 0.0)), ("sagittal", (0.0, 10.0, 0.0))):
        view = window.views[plane]
        drag(view, point(view.widget_pos_of(SPHERE_LPS + offset + (0, 0, 14))),
             point(view.widget_pos_of(SPHERE_LPS + offset - (0, 0, 14))))
    seeds = doc.seeds
    value = doc.label_map.segment("lesion").value
    assert (seeds == value).any() and (seeds == SEED_BACKGROUND).any()
    qtbot.mouseClick(panel.grow_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    grown = doc.label_map.mask("lesion")
    truth = sphere_truth(doc.volume)
    dice = 2 * (grown & truth).sum() / (grown.sum() + truth.sum())
    assert dice > 0.85, dice
    # The seeds stay: one more background stroke refines the result in place (no recomputation).
    assert doc.seeds is not None
    drag(axial, point(axial.widget_pos_of(np.array((12, -8, 0), float))),  # inside the strokes' box
         point(axial.widget_pos_of(np.array((14, -8, 0), float))))
    qtbot.mouseClick(panel.grow_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert doc.seed_grower.last_update_was_incremental
    refined = doc.label_map.mask("lesion")
    assert 2 * (refined & truth).sum() / (refined.sum() + truth.sum()) > 0.85
    qtbot.mouseClick(panel.clear_seeds_button, Qt.MouseButton.LeftButton)
    assert doc.seeds is None and doc.seed_grower is None
    qtbot.mouseClick(panel.surfaces_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    meshes = list(doc.case.meshes.values())
    assert [m.name for m in meshes] == ["lesion"]
    centre = meshes[0].vertices_lps.mean(axis=0)
    assert np.linalg.norm(centre - SPHERE_LPS) < 1.5
    assert meshes[0].vertices_lps[:, 0].max() == pytest.approx(SPHERE_LPS[0] + 6.0, abs=1.5)


def test_settings_restore_geometry_brush_and_layout(qtbot) -> None:  # type: ignore[no-untyped-def]
    first = window_with(qtbot)
    first.resize(760, 560)  # within the offscreen screen (800 x 600)
    first.segment_panel.brush.setValue(7.5)
    first.set_layout("1-up", "sagittal")
    size = (first.width(), first.height())
    assert size != (1200, 800)
    first.close()
    second = window_with(qtbot, resize=False)
    assert second.segment_panel.brush.value() == 7.5
    assert second.layout_mode == "1-up"
    assert (second.width(), second.height()) == size


def test_keep_largest_island_and_smoothing(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    for box, value in ((panel.lower, 250.0), (panel.upper, 400.0)):
        box.setValue(value)
    qtbot.mouseClick(panel.threshold_button, Qt.MouseButton.LeftButton)  # the sphere, as segment 'threshold'
    sphere = doc.label_map.mask("threshold")
    QTest.keyClick(window, Qt.Key.Key_B)
    panel.brush.setValue(2.0)
    island = np.array([-12.0, -10.0, 0.0])
    drag(axial, point(axial.widget_pos_of(island)), point(axial.widget_pos_of(island + (1, 0, 0))))
    panel.brush.setValue(0.8)  # a thin spur out of the sphere: one voxel wide (y, z spacing 1.5, 2 mm)
    spur_start, spur_end = SPHERE_LPS + (5.5, 0, 0), SPHERE_LPS + (12, 0, 0)
    drag(axial, point(axial.widget_pos_of(spur_start)), point(axial.widget_pos_of(spur_end)), steps=30)
    edited = doc.label_map.mask("threshold")
    i, j, k = np.rint(doc.volume.lps_to_ijk_points(island)).astype(int)
    assert edited[k, j, i] and edited.sum() > sphere.sum()
    _modify(window, qtbot, "keep_largest")
    kept = doc.label_map.mask("threshold")
    assert not kept[k, j, i] and kept.sum() > sphere.sum()  # the island went, the spur (connected) stayed
    _modify(window, qtbot, "smooth", value=1.5)
    smooth = doc.label_map.mask("threshold")
    i, j, k = np.rint(doc.volume.lps_to_ijk_points(SPHERE_LPS + (10, 0, 0))).astype(int)
    assert kept[k, j, i] and not smooth[k, j, i]  # the spur is gone
    dice = 2 * (smooth & sphere).sum() / (smooth.sum() + sphere.sum())
    assert dice > 0.9, dice
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(doc.label_map.mask("threshold"), kept)


def test_segment_list_has_one_row_of_controls_per_segment(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QDoubleSpinBox

    panel = window.segment_panel
    for _ in range(2):
        qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    window.document.apply_threshold("lesion", 250.0, 400.0)
    spins = [s.objectName() for s in panel.table.findChildren(QDoubleSpinBox) if s.isVisible()]
    assert sorted(spins) == ["opacity-lesion", "opacity-second"]
    assert [panel.table.item(r, 2).text() for r in range(panel.table.rowCount())] == ["lesion", "second"]
    selected = panel.current_segment()
    qtbot.mouseClick(panel.remove_button, Qt.MouseButton.LeftButton)  # removes the selected one
    assert [s.name for s in window.document.segments()] == [n for n in ("lesion", "second") if n != selected]


# --- Modify segment: margins, holes, hollow, islands, logical operators, rename -----------------

def _segment_with(doc, name: str, edit) -> None:  # type: ignore[no-untyped-def]
    """Set-up: segment ``name`` (added when new) edited by a core function, outside the Modify group."""
    if name not in [s.name for s in doc.segments()]:
        doc.add_segment(name)
    doc.apply_edit(f"set up {name}", edit)


def _modify(window, qtbot, key: str, *, value: float | None = None, other: str | None = None,  # type: ignore[no-untyped-def]
            only_unlabelled: bool = False, new_name: str | None = None) -> None:
    """Choose operation ``key`` in the Modify group, fill in its inputs and click Apply (waiting for a job)."""
    panel = window.segment_panel
    panel.modify_combo.setCurrentIndex(panel.modify_combo.findData(key))
    if value is not None:
        assert panel.modify_value.isVisibleTo(panel)
        panel.modify_value.setValue(value)
    if other is not None:
        assert panel.modify_other.isVisibleTo(panel)
        panel.modify_other.setCurrentText(other)
        assert panel.modify_other.currentText() == other
    panel.modify_overwrite.setChecked(only_unlabelled)
    if new_name is not None:
        assert panel.modify_name.isVisibleTo(panel)
        panel.modify_name.clear()
        QTest.keyClicks(panel.modify_name, new_name)
    qtbot.mouseClick(panel.modify_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)


def _error_boxes(window):  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QMessageBox

    return [b for b in window.findChildren(QMessageBox) if b.objectName() == "error-box" and b.isVisible()]


def _lesion_sphere(window):  # type: ignore[no-untyped-def]
    from workstation import segment_edits

    doc = window.document
    volume = doc.volume
    _segment_with(doc, "lesion", lambda labels: segment_edits.threshold_segment(labels, volume, "lesion",
                                                                                lower=250.0, upper=400.0))
    window.segment_panel.select_segment("lesion")
    assert window.segment_panel.current_segment() == "lesion"
    return doc.label_map.mask("lesion")


def test_modify_shape_operations_equal_the_core_functions_and_undo_restores(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from workstation import segment_edits as se

    doc, panel = window.document, window.segment_panel
    sphere = _lesion_sphere(window)
    steps = (  # (operation, value, the same edit called directly)
        ("grow", 2.0, lambda m: se.morph(m, "lesion", operation="grow", mm=2.0)),
        ("shrink", 1.5, lambda m: se.morph(m, "lesion", operation="shrink", mm=1.5)),
        ("hollow_outside", 1.5, lambda m: se.hollow(m, "lesion", thickness_mm=1.5, inside=False)),
        ("fill_holes_per_slice", None, lambda m: se.fill_holes(m, "lesion", per_slice=True)),
        ("hollow_inside", 2.0, lambda m: se.hollow(m, "lesion", thickness_mm=2.0, inside=True)),
        ("fill_holes", None, lambda m: se.fill_holes(m, "lesion")),
        ("smooth", 2.5, lambda m: se.morph(m, "lesion", operation="smooth", mm=2.5)),  # long: runs as a job
    )
    jobs: list[str] = []
    run_job = panel.run_job
    panel.run_job = lambda title, *args: (jobs.append(title), run_job(title, *args))[1]
    states = [doc.label_map]
    for key, value, core in steps:
        before = doc.label_map
        _modify(window, qtbot, key, value=value)
        assert not _error_boxes(window), key
        expected = core(before)
        np.testing.assert_array_equal(doc.label_map.array, expected.array, err_msg=key)
        assert doc.label_map.segments == expected.segments
        assert not np.array_equal(doc.label_map.array, before.array), f"{key} changed nothing"
        states.append(doc.label_map)
    # A shell made inside the old surface encloses the old interior: filling its holes gives it back.
    np.testing.assert_array_equal(states[6].mask("lesion"), states[4].mask("lesion"))
    assert doc.history.labels()[-3:] == ["hollow lesion 2 mm inside", "fill holes of lesion",
                                         "smooth lesion 2.5 mm"]
    assert jobs == ["Smooth lesion 2.5 mm"]  # only the long one ran in a worker thread
    for state in reversed(states[:-1]):
        qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
        np.testing.assert_array_equal(doc.label_map.array, state.array)
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), sphere)


def test_modify_value_field_follows_the_operation(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = window.segment_panel
    assert not panel.modify_button.isEnabled()  # no segment yet
    _lesion_sphere(window)
    assert panel.modify_button.isEnabled()
    combo, value = panel.modify_combo, panel.modify_value
    assert [combo.itemText(n) for n in range(combo.count())] == [
        "Grow", "Shrink", "Smooth", "Fill holes", "Fill holes per slice", "Fill between slices", "Hollow (inside)",
        "Hollow (outside)", "Remove pieces smaller than", "Union with", "Intersect with", "Subtract",
        "Keep largest piece", "Keep piece under crosshair", "Rename"]
    combo.setCurrentIndex(combo.findData("grow"))
    value.setValue(4.5)
    assert (panel.modify_value_label.text(), value.suffix()) == ("Margin", " mm")
    assert panel.modify_overwrite.isEnabled() and not panel.modify_other.isVisibleTo(panel)
    combo.setCurrentIndex(combo.findData("remove_small"))
    assert (panel.modify_value_label.text(), value.suffix(), value.value()) == ("Volume", " ml", 0.5)
    assert not panel.modify_overwrite.isEnabled()  # remove_small has no overwrite option
    combo.setCurrentIndex(combo.findData("fill_holes"))
    assert not value.isVisibleTo(panel) and not panel.modify_name.isVisibleTo(panel)
    combo.setCurrentIndex(combo.findData("subtract"))
    assert panel.modify_other.isVisibleTo(panel) and value.suffix() == " mm"
    assert not panel.modify_button.isEnabled()  # nothing to subtract: no second segment
    window.document.add_segment("second")
    panel.select_segment("lesion")
    assert [panel.modify_other.itemText(n) for n in range(panel.modify_other.count())] == ["second"]
    assert panel.modify_button.isEnabled()
    combo.setCurrentIndex(combo.findData("grow"))
    assert value.value() == 4.5  # each operation keeps its own last value


def test_modify_subtract_intersect_union_with_a_margin(window, qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from ui import segment_panel
    from workstation import segment_edits as se

    doc, panel = window.document, window.segment_panel
    _lesion_sphere(window)
    _segment_with(doc, "second", lambda m: se.paint(m, "second", center_lps=SPHERE_LPS + (7.0, 0, 0), radius_mm=2.5))
    panel.select_segment("lesion")
    start = doc.label_map
    lesion, second = start.mask("lesion"), start.mask("second")
    assert lesion.any() and second.any() and not (lesion & second).any()
    # Truth by brute force: the distance of each lesion voxel centre to the nearest voxel centre of 'second'.
    volume = doc.volume
    centres = [volume.ijk_to_lps_points(np.argwhere(m)[:, ::-1]) for m in (lesion, second)]
    nearest = np.linalg.norm(centres[0][:, None, :] - centres[1][None, :, :], axis=2).min(axis=1)
    near = np.zeros_like(lesion)
    near[tuple(np.argwhere(lesion).T)] = nearest <= 3.0
    assert 0 < near.sum() < lesion.sum()

    # On a grid larger than JOB_ABOVE_VOXELS a margin runs as a job: same result.
    jobs: list[str] = []
    run_job = panel.run_job
    monkeypatch.setattr(panel, "run_job", lambda title, *args: (jobs.append(title), run_job(title, *args))[1])
    monkeypatch.setattr(segment_panel, "JOB_ABOVE_VOXELS", lesion.size - 1)
    _modify(window, qtbot, "subtract", value=3.0, other="second")
    assert jobs == ["Lesion minus second +3 mm"]
    monkeypatch.setattr(segment_panel, "JOB_ABOVE_VOXELS", lesion.size)
    expected = se.combine(start, "lesion", operation="subtract", others=["second"], margin_mm=3.0)
    np.testing.assert_array_equal(doc.label_map.array, expected.array)
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), lesion & ~near)
    np.testing.assert_array_equal(doc.label_map.mask("second"), second)
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert doc.label_map.array is not start.array and np.array_equal(doc.label_map.array, start.array)

    _modify(window, qtbot, "intersect", value=3.0, other="second")
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), near)
    assert len(jobs) == 1  # not a job on the phantom's grid
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)

    # Union with a margin, only into unlabelled voxels: 'second' keeps all its voxels.
    _modify(window, qtbot, "union", value=1.0, other="second", only_unlabelled=True)
    expected = se.combine(start, "lesion", operation="union", others=["second"], margin_mm=1.0, overwrite=False)
    np.testing.assert_array_equal(doc.label_map.array, expected.array)
    np.testing.assert_array_equal(doc.label_map.mask("second"), second)
    assert doc.label_map.mask("lesion").sum() > lesion.sum()
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    # Without the option the union takes the voxels of 'second' (one label per voxel).
    _modify(window, qtbot, "union", value=0.0, other="second")
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), lesion | second)
    assert not doc.label_map.mask("second").any()


def test_modify_remove_small_pieces_and_keep_piece_under_crosshair(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from workstation import segment_edits as se

    doc, panel = window.document, window.segment_panel
    sphere = _lesion_sphere(window)  # about 0.9 ml
    speck_lps = np.array([-12.0, 10.0, -10.0])
    _segment_with(doc, "lesion", lambda m: se.paint(m, "lesion", center_lps=speck_lps, radius_mm=1.5))  # ~0.014 ml
    panel.select_segment("lesion")
    with_speck = doc.label_map
    speck = with_speck.mask("lesion") & ~sphere
    assert speck.any()

    _modify(window, qtbot, "remove_small", value=0.1)
    expected = se.remove_small(with_speck, "lesion", min_ml=0.1)
    np.testing.assert_array_equal(doc.label_map.array, expected.array)
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), sphere)
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(doc.label_map.array, with_speck.array)

    doc.set_crosshair(speck_lps)
    _modify(window, qtbot, "keep_at_crosshair")
    expected = se.keep_at_points(with_speck, "lesion", points_lps=doc.crosshair_lps)
    np.testing.assert_array_equal(doc.label_map.array, expected.array)
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), speck)


def test_modify_rename_shows_the_new_name_and_errors_leave_the_labels(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc, panel = window.document, window.segment_panel
    _lesion_sphere(window)
    doc.add_segment("second")
    panel.select_segment("lesion")
    voxels = doc.label_map.array

    _modify(window, qtbot, "rename", new_name="tumour")
    assert [panel.table.item(r, 2).text() for r in range(panel.table.rowCount())] == ["tumour", "second"]
    assert panel.current_segment() == "tumour"
    np.testing.assert_array_equal(doc.label_map.mask("tumour"), voxels == doc.label_map.segment("tumour").value)
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    assert [panel.table.item(r, 2).text() for r in range(panel.table.rowCount())] == ["lesion", "second"]

    # Errors from the core show in the error box and change nothing (labels, segments, undo history).
    for select, key, options, reason in (
            ("lesion", "rename", {"new_name": "second"}, "already used"),
            ("second", "remove_small", {"value": 0.5}, "empty"),  # 'second' has no voxels
            ("second", "keep_at_crosshair", {}, "empty")):
        panel.select_segment(select)
        before, undo_steps = doc.label_map, doc.history.labels()
        _modify(window, qtbot, key, **options)
        boxes = _error_boxes(window)
        assert len(boxes) == 1 and reason in boxes[0].text(), [b.text() for b in boxes]
        boxes[0].close()
        assert doc.label_map is before and doc.history.labels() == undo_steps
        assert [s.name for s in doc.segments()] == ["lesion", "second"]


def test_every_modify_operation_of_the_app_is_a_twin_edit_operation() -> None:
    """What the app's Modify group does can be done without a window (``twin edit``)."""
    from ui.segment_panel import MODIFICATIONS
    from workstation.cli.edit_commands import OPERATIONS

    cli = {"fill_holes_per_slice": "fill-holes", "hollow_inside": "hollow", "hollow_outside": "hollow",
           "keep_at_crosshair": "keep-at"}
    for modification in MODIFICATIONS:
        assert cli.get(modification.key, modification.key.replace("_", "-")) in OPERATIONS, modification.key


def test_undo_reaches_edits_made_with_twin_edit_and_is_saved_with_the_case(window, qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from workstation.bundle import load_case, save_case
    from workstation.cli import main as cli

    doc, panel = window.document, window.segment_panel
    path = tmp_path / "case"
    save_case(doc.case, path)
    assert cli.main(["edit", str(path), "threshold", "sphere", "--lower", "200", "--upper", "400", "-q"]) == 0
    assert cli.main(["edit", str(path), "grow", "sphere", "--mm", "2", "-q"]) == 0
    window.open_path(path)
    wait_idle(qtbot, window)
    grown = doc.label_map.mask("sphere")
    assert panel.undo_button.isEnabled() and doc.history.labels()[-1] == "grow sphere --mm 2.0"
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)  # the CLI's grow, undone in the app
    thresholded = doc.label_map.mask("sphere")
    np.testing.assert_array_equal(thresholded, sphere_truth(doc.volume))
    assert grown.sum() > thresholded.sum() and panel.redo_button.isEnabled()
    window.save_case()
    wait_idle(qtbot, window)
    assert cli.main(["edit", str(path), "redo", "-q"]) == 0  # and redone on the command line
    np.testing.assert_array_equal(load_case(path).label_maps[doc.label_map.id].mask("sphere"), grown)
    # an undo that no longer applies (the labels changed outside the journal) shows an error and changes nothing
    case = doc.case
    array = doc.label_map.array.copy()
    array[thresholded] = 0
    case.replace_label_map(doc.label_map.with_array(array))
    doc.label_map = case.label_maps[doc.label_map.id]
    before = doc.label_map
    qtbot.mouseClick(panel.undo_button, Qt.MouseButton.LeftButton)
    boxes = _error_boxes(window)
    assert len(boxes) == 1 and "changed since by something not in the case's journal" in boxes[0].text()
    assert doc.label_map is before


def test_a_2d_brush_outlines_slices_and_fill_between_slices_joins_them(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from workstation import segment_edits

    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    panel.brush.setValue(4.0)
    panel.brush_2d.setChecked(True)
    QTest.keyClick(window, Qt.Key.Key_B)
    for z in (-4.0, 4.0):  # axial slices k = 10 and k = 14 of the phantom (2 mm, from z = -24)
        doc.set_crosshair([5.0, 0.0, z])
        axial.repaint()  # the view cuts its slice when it paints
        drag(axial, point(axial.widget_pos_of(np.array([3.0, 0.0, z]))),
             point(axial.widget_pos_of(np.array([7.0, 0.0, z]))))
    outlined = doc.label_map
    assert np.flatnonzero(outlined.mask("lesion").any(axis=(1, 2))).tolist() == [10, 14]
    _modify(window, qtbot, "fill_between_slices")
    np.testing.assert_array_equal(doc.label_map.array, segment_edits.fill_between_slices(outlined, "lesion").array)
    assert np.flatnonzero(doc.label_map.mask("lesion").any(axis=(1, 2))).tolist() == list(range(10, 15))
    assert doc.history.labels()[-1] == "fill between slices of lesion"


def test_an_outline_dragged_in_a_view_is_filled_and_ctrl_erases(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from workstation import segment_edits

    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    QTest.keyClick(window, Qt.Key.Key_D)  # draw
    assert panel.current_tool() == "draw" and axial.tool == "draw"
    doc.set_crosshair([5.0, 0.0, 4.0])  # axial slice k = 14
    axial.repaint()
    before = doc.label_map
    corners = [np.array([x, y, 4.0]) for x, y in ((0.0, -3.0), (8.0, -3.0), (8.0, 5.0), (0.0, 5.0))]
    positions = [point(axial.widget_pos_of(c)) for c in corners]
    QTest.mousePress(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
    for position in positions[1:]:
        QTest.mouseMove(axial, position)
    QTest.mouseRelease(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[-1])
    drawn = doc.label_map.mask("lesion")
    assert np.flatnonzero(drawn.any(axis=(1, 2))).tolist() == [14]
    # the view's points are the corners where the mouse was: the same as twin edit draw with them
    points = [axial.lps_at(p) for p in positions]
    np.testing.assert_array_equal(doc.label_map.array,
                                  segment_edits.draw(before, "lesion", points_lps=points, plane="axial").array)
    assert drawn.sum() * 1.0 * 1.5 == pytest.approx(8 * 8, rel=0.35)  # 8 x 8 mm on 1 x 1.5 mm voxels
    assert doc.history.labels()[-1] == "draw lesion (axial)"
    # a click is not an outline, and Esc while drawing cancels the outline
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=positions[0])
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), drawn)
    QTest.mousePress(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
    for position in positions[1:]:
        QTest.mouseMove(axial, position)
    QTest.keyClick(window, Qt.Key.Key_Escape)
    QTest.mouseRelease(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, positions[-1])
    assert axial.tool == "navigate"
    np.testing.assert_array_equal(doc.label_map.mask("lesion"), drawn)
    assert doc.history.labels()[-1] == "draw lesion (axial)"
    QTest.keyClick(window, Qt.Key.Key_D)
    # with Ctrl held on release, the outlined region is erased (a triangle: half the square)
    QTest.mousePress(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
    for position in positions[1:3]:
        QTest.mouseMove(axial, position)
    QTest.mouseRelease(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, positions[2])
    left = doc.label_map.mask("lesion")
    assert 0.3 * drawn.sum() < left.sum() < 0.7 * drawn.sum() and not np.any(left & ~drawn)
    assert doc.history.labels()[-1] == "draw lesion (axial, erase)"


def test_scissors_cut_the_segment_in_every_slice_and_ctrl_keeps_inside(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from workstation import segment_edits

    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    doc.set_crosshair([5.0, 0.0, 0.0])
    panel.brush.setValue(6.0)
    QTest.keyClick(window, Qt.Key.Key_B)
    drag(axial, point(axial.widget_pos_of(SPHERE_LPS)), point(axial.widget_pos_of(SPHERE_LPS)))  # a ball
    ball = doc.label_map
    QTest.keyClick(window, Qt.Key.Key_X)  # scissors
    assert panel.current_tool() == "scissors" and axial.tool == "scissors"
    axial.repaint()
    corners = [np.array([x, y, 0.0]) for x, y in ((5.0, -10.0), (15.0, -10.0), (15.0, 10.0), (5.0, 10.0))]
    positions = [point(axial.widget_pos_of(c)) for c in corners]
    for modifier in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ControlModifier):
        QTest.mousePress(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
        for position in positions[1:]:
            QTest.mouseMove(axial, position)
        QTest.mouseRelease(axial, Qt.MouseButton.LeftButton, modifier, positions[-1])
        points = [axial.lps_at(p) for p in positions]
        expected = segment_edits.scissors(ball, "lesion", points_lps=points, plane="axial",
                                          keep_inside=modifier == Qt.KeyboardModifier.ControlModifier)
        np.testing.assert_array_equal(doc.label_map.array, expected.array)
        slices = np.flatnonzero((ball.mask("lesion") & ~doc.label_map.mask("lesion")).any(axis=(1, 2)))
        assert slices.tolist() == np.flatnonzero(ball.mask("lesion").any(axis=(1, 2))).tolist()  # every slice
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        np.testing.assert_array_equal(doc.label_map.array, ball.array)


def test_level_trace_clicks_fill_erase_and_trace_darker_structures(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from workstation import segment_edits

    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    QTest.keyClick(window, Qt.Key.Key_V)  # level trace
    assert panel.current_tool() == "level_trace" and axial.tool == "level_trace"
    doc.set_crosshair([5.0, 0.0, 0.0])
    axial.repaint()
    inside = point(axial.widget_pos_of(np.array([8.0, 0.0, 0.0])))  # in the 300 HU sphere, 3 mm from its edge
    expected = doc.label_map
    for modifier in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ControlModifier,
                     Qt.KeyboardModifier.AltModifier):
        QTest.mouseClick(axial, Qt.MouseButton.LeftButton, modifier, inside)
        expected = segment_edits.level_trace(expected, doc.volume, "lesion", point_lps=axial.lps_at(inside),
                                             plane="axial", darker=modifier == Qt.KeyboardModifier.AltModifier,
                                             erase=modifier == Qt.KeyboardModifier.ControlModifier)
        np.testing.assert_array_equal(doc.label_map.array, expected.array)
        if modifier == Qt.KeyboardModifier.NoModifier:  # the sphere's disc in the slice shown (k = 12)
            np.testing.assert_array_equal(doc.label_map.mask("lesion"), sphere_truth(doc.volume) & (
                np.arange(24)[:, None, None] == 12))
    assert doc.history.labels()[-3:] == ["level trace lesion (axial)", "level trace lesion (axial, erase)",
                                         "level trace lesion (axial, darker)"]
    # the panel's box does what Alt does (window managers may take Alt+click)
    panel.trace_darker.setChecked(True)
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier, inside)
    expected = segment_edits.level_trace(expected, doc.volume, "lesion", point_lps=axial.lps_at(inside),
                                         plane="axial", darker=True, erase=True)
    np.testing.assert_array_equal(doc.label_map.array, expected.array)
    assert doc.history.labels()[-1] == "level trace lesion (axial, darker, erase)"


def test_level_trace_previews_the_outline_under_the_cursor_before_the_click(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    from ui.slice_view import TRACE_RGBA

    doc, panel, axial = window.document, window.segment_panel, window.views["axial"]
    qtbot.mouseClick(panel.add_button, Qt.MouseButton.LeftButton)
    QTest.keyClick(window, Qt.Key.Key_V)  # level trace
    doc.set_crosshair([5.0, 0.0, 0.0])
    axial.repaint()
    assert axial.trace_preview() is None  # the cursor has not been over the view
    inside = point(axial.widget_pos_of(np.array([8.0, 0.0, 0.0])))  # in the 300 HU sphere, 3 mm from its edge
    QTest.mouseMove(axial, inside)
    preview = axial.trace_preview()
    shown = slicing.cut(doc.volume, "axial", doc.crosshair_lps, array=sphere_truth(doc.volume).astype(np.uint8),
                        labels=True)
    np.testing.assert_array_equal(preview, shown.pixels.astype(bool))  # the sphere's disc in the slice shown
    assert not doc.label_map.mask("lesion").any()  # hovering edits nothing
    # the user sees the disc's outline drawn, and the disc's inside left as it was
    rows, cols = np.nonzero(preview)
    edge = np.argmax(cols)  # the disc's outermost pixel along a row: on its outline
    on_edge = point(axial.widget_pos_of(shown.lps_at(float(cols[edge]), float(rows[edge]))))
    centre = point(axial.widget_pos_of(shown.lps_at(float(cols.mean()), float(rows.mean()))))
    axial.repaint()
    alpha = TRACE_RGBA[3] / 255
    assert pixel_rgb(axial, on_edge)[2] < 255 * (1 - alpha) + TRACE_RGBA[2] * alpha + 2  # blue suppressed: yellow
    red, green, blue = pixel_rgb(axial, centre)
    assert red == green == blue  # gray: no outline inside the disc
    # the click fills exactly what was previewed
    QTest.mouseClick(axial, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, inside)
    filled = slicing.cut(doc.volume, "axial", doc.crosshair_lps, array=doc.label_map.mask("lesion").astype(np.uint8),
                         labels=True).pixels.astype(bool)
    np.testing.assert_array_equal(filled, preview)
    # Alt (held while moving, or pressed without moving) or the panel's box previews a darker
    # structure: from the same point, the sphere's surroundings and the sphere
    axial.mouseMoveEvent(_move_event(inside, Qt.KeyboardModifier.AltModifier))
    darker = axial.trace_preview()
    assert darker.sum() > preview.sum()
    axial.mouseMoveEvent(_move_event(inside, Qt.KeyboardModifier.NoModifier))
    QTest.keyPress(axial, Qt.Key.Key_Alt)
    np.testing.assert_array_equal(axial.trace_preview(), darker)
    QTest.keyRelease(axial, Qt.Key.Key_Alt)
    np.testing.assert_array_equal(axial.trace_preview(), preview)
    panel.trace_darker.setChecked(True)
    np.testing.assert_array_equal(axial.trace_preview(), darker)
    panel.trace_darker.setChecked(False)
    # anywhere in a view (here the coronal one, whose rows run against k), the preview is what the
    # click would fill, and there is none where the click is refused (beyond the volume's edge)
    from workstation import segment_edits
    from workstation.errors import InputError

    coronal = window.views["coronal"]
    coronal.segment_name = axial.segment_name
    coronal.repaint()
    empty = segment_edits.add_segment(doc.label_map, "probe")
    previews = refusals = 0
    for y in range(0, coronal.height(), 7):
        for x in range(0, coronal.width(), 23):
            coronal.mouseMoveEvent(_move_event(QPointF(x, y), Qt.KeyboardModifier.NoModifier))
            try:
                clicked = segment_edits.level_trace(empty, doc.volume, "probe", point_lps=coronal.lps_at(QPointF(x, y)),
                                                    plane="coronal").mask("probe")
            except InputError:
                assert coronal.trace_preview() is None
                refusals += 1
                continue
            seen = slicing.cut(doc.volume, "coronal", doc.crosshair_lps, array=clicked.astype(np.uint8), labels=True)
            np.testing.assert_array_equal(coronal.trace_preview(), seen.pixels.astype(bool))
            previews += 1
    assert previews > 100 and refusals > 10
    # Alt goes to the view with the focus; the preview under the cursor, in another view, follows it
    axial.setFocus()
    in_sphere = coronal.widget_pos_of(np.array([8.0, 0.0, 0.0]))
    coronal.mouseMoveEvent(_move_event(in_sphere, Qt.KeyboardModifier.NoModifier))
    plain = coronal.trace_preview()
    QTest.keyPress(axial, Qt.Key.Key_Alt)
    assert coronal.trace_preview().sum() > plain.sum()
    QTest.keyRelease(axial, Qt.Key.Key_Alt)
    np.testing.assert_array_equal(coronal.trace_preview(), plain)
    # a cursor moved while another tool was active is where the preview starts when the tool comes back
    QTest.keyClick(window, Qt.Key.Key_Escape)
    bright = point(axial.widget_pos_of(np.array([8.0, 0.0, 0.0])))  # the sphere again, from navigate
    axial.mouseMoveEvent(_move_event(point(axial.widget_pos_of(np.array([-5.0, 0.0, 0.0]))),
                                     Qt.KeyboardModifier.NoModifier))  # the -50 HU body: all of the slice
    QTest.keyClick(window, Qt.Key.Key_V)
    assert axial.trace_preview().all()
    QTest.keyClick(window, Qt.Key.Key_Escape)
    axial.mouseMoveEvent(_move_event(bright, Qt.KeyboardModifier.NoModifier))
    QTest.keyClick(window, Qt.Key.Key_V)
    np.testing.assert_array_equal(axial.trace_preview(), preview)
    # leaving the view, or another tool, shows no preview
    QApplication.sendEvent(axial, QEvent(QEvent.Type.Leave))
    assert axial.trace_preview() is None
    axial.mouseMoveEvent(_move_event(inside, Qt.KeyboardModifier.NoModifier))  # back over the view
    np.testing.assert_array_equal(axial.trace_preview(), preview)
    QTest.keyClick(window, Qt.Key.Key_Escape)
    assert axial.tool == "navigate" and axial.trace_preview() is None


def _move_event(pos, modifiers):  # type: ignore[no-untyped-def]
    from PySide6.QtCore import QPointF
    from PySide6.QtGui import QMouseEvent

    return QMouseEvent(QMouseEvent.Type.MouseMove, QPointF(pos), QPointF(pos), Qt.MouseButton.NoButton,
                       Qt.MouseButton.NoButton, modifiers)


def test_outline_tools_warn_that_an_oblique_volume_is_filled_in_its_own_slices(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    aligned = phantom_volume()
    window = window_with(qtbot, turned_phantom("z", (20.0,)))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("lesion", True))
    qtbot.mouseClick(window.segment_panel.add_button, Qt.MouseButton.LeftButton)
    window.segment_panel.brush_2d.setChecked(True)
    for key, tool in ((Qt.Key.Key_D, "draw"), (Qt.Key.Key_V, "level trace"), (Qt.Key.Key_B, "paint")):
        QTest.keyClick(window, key)
        assert window.statusBar().currentMessage().startswith(f"{tool}: this volume is oblique to the views")
    window.segment_panel.brush_2d.setChecked(False)
    QTest.keyClick(window, Qt.Key.Key_B)  # a 3-D brush paints balls: nothing to warn about
    assert window.statusBar().currentMessage() == "tool: paint"
    # a resampled view does not show the voxel slice a level-trace click traces: no preview there
    QTest.keyClick(window, Qt.Key.Key_V)
    axial = window.views["axial"]
    axial.repaint()
    centre = axial.widget_pos_of(window.document.volume.ijk_to_lps_points([25.0, 16.0, 12.0]))
    axial.mouseMoveEvent(_move_event(centre, Qt.KeyboardModifier.NoModifier))
    assert axial.trace_preview() is None
    window.follow_volume_action.trigger()
    axial.repaint()
    axial.mouseMoveEvent(_move_event(axial.widget_pos_of(window.document.volume.ijk_to_lps_points([25.0, 16.0, 12.0])),
                                     Qt.KeyboardModifier.NoModifier))
    assert axial.trace_preview().sum() > 10  # the sphere's disc, in the volume's own slice
    window.follow_volume_action.trigger()
    QTest.keyClick(window, Qt.Key.Key_X)  # scissors follow the view's normal: nothing to warn about
    assert window.statusBar().currentMessage() == "tool: scissors"
    window.document.set_case(case_of(aligned))
    QTest.keyClick(window, Qt.Key.Key_D)
    assert window.statusBar().currentMessage() == "tool: draw"


def test_views_that_follow_an_oblique_volume_fill_and_cut_what_they_show(qtbot, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from segmentation.editing import polygon_mask
    from workstation import segment_edits

    oblique = turned_phantom("zx", (20.0, 10.0))
    affine = np.asarray(oblique.ijk_to_lps, dtype=float)
    window = window_with(qtbot, oblique)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("lesion", True))
    doc, coronal = window.document, window.views["coronal"]
    qtbot.mouseClick(window.segment_panel.add_button, Qt.MouseButton.LeftButton)
    doc.set_crosshair(oblique.ijk_to_lps_points([25.0, 16.0, 12.0]))  # the sphere's centre voxel
    window.follow_volume_action.trigger()
    assert doc.views_follow_volume
    coronal.repaint()
    QTest.keyClick(window, Qt.Key.Key_D)
    assert "oblique" not in window.statusBar().currentMessage()  # the views show what is filled: no warning
    centre = coronal.widget_pos_of(doc.crosshair_lps)
    positions = [point(centre + offset) for offset in (QPointF(-40, -30), QPointF(40, -30), QPointF(40, 30),
                                                       QPointF(-40, 30))]
    QTest.mousePress(coronal, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[0])
    for position in positions[1:]:
        QTest.mouseMove(coronal, position)
    QTest.mouseRelease(coronal, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, positions[-1])
    drawn = doc.label_map.mask("lesion")
    assert drawn.sum() > 20 and np.unique(np.nonzero(drawn)[1]).size == 1  # one voxel slice (j)
    shown = slicing.cut(oblique, "coronal", doc.crosshair_lps, array=drawn.astype(np.uint8), labels=True,
                        follow_volume=True)
    assert shown.pixels.astype(bool).sum() == drawn.sum()  # every filled voxel is in the view...
    corners = [shown.pixel_of(coronal.lps_at(p)) for p in positions]
    np.testing.assert_array_equal(shown.pixels.astype(bool),  # ...and they are the outline's pixels
                                  polygon_mask([(row, col) for col, row in corners], shown.pixels.shape))
    # resampled in the patient's coronal plane, the same voxel slice crosses the view: a stripe of it
    resampled = slicing.cut(oblique, "coronal", doc.crosshair_lps, array=drawn.astype(np.uint8), labels=True)
    area_mm2 = shown.pixels.astype(bool).sum() * np.prod(shown.pixel_mm)
    assert resampled.pixels.astype(bool).sum() * np.prod(resampled.pixel_mm) < 0.7 * area_mm2
    # scissors sweep along the view's normal: the volume's own j axis here, not the patient's y
    QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    window.segment_panel.brush.setValue(6.0)
    QTest.keyClick(window, Qt.Key.Key_B)
    drag(coronal, point(centre), point(centre))  # a ball
    ball = doc.label_map
    QTest.keyClick(window, Qt.Key.Key_X)
    half = [point(centre + offset) for offset in (QPointF(0, -60), QPointF(80, -60), QPointF(80, 60),
                                                  QPointF(0, 60))]
    QTest.mousePress(coronal, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, half[0])
    for position in half[1:]:
        QTest.mouseMove(coronal, position)
    QTest.mouseRelease(coronal, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, half[-1])
    points = [coronal.lps_at(p) for p in half]
    j_axis = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    expected = segment_edits.scissors(ball, "lesion", points_lps=points, plane="coronal", normal_lps=j_axis)
    np.testing.assert_array_equal(doc.label_map.array, expected.array)
    along_y = segment_edits.scissors(ball, "lesion", points_lps=points, plane="coronal")
    assert np.any(along_y.array != expected.array)
    cut_away = ball.mask("lesion") & ~doc.label_map.mask("lesion")
    assert np.array_equal(cut_away.any(axis=(0, 2)), ball.mask("lesion").any(axis=(0, 2)))  # in every j slice


def test_edits_fill_the_slices_shown_when_the_views_follow_a_volume_turned_past_45_degrees(qtbot, monkeypatch
                                                                                           ) -> None:  # type: ignore[no-untyped-def]
    """Turned 36 deg about z then 39 deg about x, the volume axis nearest each patient plane's normal
    taken plane by plane is not one axis each: views and edits share one assignment instead."""
    oblique = turned_phantom("zx", (36.0, 39.0))
    window = window_with(qtbot, oblique)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("lesion", True))
    doc = window.document
    qtbot.mouseClick(window.segment_panel.add_button, Qt.MouseButton.LeftButton)
    doc.set_crosshair(oblique.ijk_to_lps_points([25.0, 16.0, 12.0]))  # the sphere's centre voxel
    window.follow_volume_action.trigger()
    for plane, view in window.views.items():
        view.repaint()  # every view paints (its crosshair lines too)
        QTest.keyClick(window, Qt.Key.Key_D)
        centre = view.widget_pos_of(doc.crosshair_lps)
        corners = [point(centre + QPointF(dx, dy)) for dx, dy in ((-25, -25), (25, -25), (25, 25), (-25, 25))]
        QTest.mousePress(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corners[0])
        for position in corners[1:]:
            QTest.mouseMove(view, position)
        QTest.mouseRelease(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corners[-1])
        drawn = doc.label_map.mask("lesion")
        shown = slicing.cut(oblique, plane, doc.crosshair_lps, array=drawn.astype(np.uint8), labels=True,
                            follow_volume=True).pixels.astype(bool)
        assert drawn.sum() > 4 and shown.sum() == drawn.sum(), plane  # every drawn voxel is in the view
        # level tracing from the sphere: the preview, the fill and the view agree
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        QTest.keyClick(window, Qt.Key.Key_V)
        view.mouseMoveEvent(_move_event(point(centre), Qt.KeyboardModifier.NoModifier))
        preview = view.trace_preview()
        QTest.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, point(centre))
        traced = doc.label_map.mask("lesion")
        np.testing.assert_array_equal(slicing.cut(oblique, plane, doc.crosshair_lps, array=traced.astype(np.uint8),
                                                  labels=True, follow_volume=True).pixels.astype(bool), preview)
        assert preview.sum() == traced.sum() > 4, plane
        QTest.keyClick(window, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        # navigating in the view keeps the crosshair on the slice shown
        QTest.keyClick(window, Qt.Key.Key_Escape)
        before = view.slice.index
        QTest.mouseClick(view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corners[1])
        view.repaint()
        assert view.slice.index == before
        offset = doc.crosshair_lps - view.slice.origin_lps
        assert abs(offset @ view.normal_lps()) < 1e-6, plane
        doc.set_crosshair(oblique.ijk_to_lps_points([25.0, 16.0, 12.0]))


@pytest.mark.parametrize("turn", [("zx", (38.0, 39.0)), ("z", (45.0,))])
def test_views_that_follow_a_volume_turned_45_degrees_or_more_paint(qtbot, turn) -> None:  # type: ignore[no-untyped-def]
    """A view's columns may then run nearest its own normal: its crosshair lines still get the other
    planes' colours (the vertical line's plane was looked up by the columns' largest component)."""
    from ui.slice_view import PLANE_COLORS

    window = window_with(qtbot, turned_phantom(*turn))
    window.document.set_crosshair(window.document.volume.ijk_to_lps_points([25.0, 16.0, 12.0]))
    window.follow_volume_action.trigger()
    for plane, view in window.views.items():
        image = grab_rgb(view)  # paints, or raises in paintEvent
        centre = point(view.widget_pos_of(window.document.crosshair_lps))
        near = range(-1, 2)  # the lines are one pixel wide, at the crosshair's (fractional) position
        line_colours = {tuple(image[centre.y() + dy, centre.x() + d]) for dy in (-30, 30) for d in near}
        line_colours |= {tuple(image[centre.y() + d, centre.x() + dx]) for dx in (-30, 30) for d in near}
        others = {tuple(PLANE_COLORS[p].getRgb()[:3]) for p in slicing.PLANES if p != plane}
        assert others <= line_colours, plane
