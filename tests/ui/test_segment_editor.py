"""The segment editor driven like a user: paint/erase, undo/redo, threshold preview, presets, grow, surfaces."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QInputDialog

from tests.ui.conftest import phantom_volume
from tests.ui.helpers import drag, pixel_rgb, point, wait_idle, window_with
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
    qtbot.mouseClick(panel.island_button, Qt.MouseButton.LeftButton)
    kept = doc.label_map.mask("threshold")
    assert not kept[k, j, i] and kept.sum() > sphere.sum()  # the island went, the spur (connected) stayed
    panel.smooth_radius.setValue(1.5)
    qtbot.mouseClick(panel.smooth_button, Qt.MouseButton.LeftButton)
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
