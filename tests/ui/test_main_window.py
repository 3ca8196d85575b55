"""The main window driven like a user: crosshair, scrolling, zoom/pan, window/level, layouts, status bar."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from tests.ui.conftest import phantom_volume
from tests.ui.helpers import drag, grab_rgb, pixel_rgb, point, wheel, window_with
from ui import slicing


@pytest.fixture
def window(qtbot):  # type: ignore[no-untyped-def]
    return window_with(qtbot, phantom_volume())


def test_four_views_show_the_volume_in_patient_orientation(window) -> None:  # type: ignore[no-untyped-def]
    doc = window.document
    doc.set_window(400.0, 1000.0)  # the 1000 HU block white, the -50 HU body dark
    # Through the bright right-anterior-superior block: it is at the top-left of axial and coronal views
    # (patient's right on the screen's left, anterior / superior up) and top-left of sagittal (anterior left).
    doc.set_crosshair((-16.0, -20.0, 20.0))
    for plane in slicing.PLANES:
        view = window.views[plane]
        assert view.isVisible()
        rgb = grab_rgb(view).astype(int)
        bright = np.argwhere(rgb.sum(axis=2) > 700)
        rect = view._image_rect(view.slice)
        inside = bright[(bright[:, 1] > rect.left()) & (bright[:, 1] < rect.right())
                        & (bright[:, 0] > rect.top()) & (bright[:, 0] < rect.bottom())]
        assert len(inside) > 20, plane
        centre_row, centre_col = inside.mean(axis=0)
        assert centre_col < rect.center().x() and centre_row < rect.center().y(), plane
        # Orientation letters in yellow at the middle of the left and right edges.
        left_band = rgb[view.height() // 2 - 12: view.height() // 2 + 12, 0:20]
        assert ((left_band[..., 0] > 200) & (left_band[..., 1] > 180) & (left_band[..., 2] < 120)).any(), plane
    assert window.view3d.reason and "offscreen" in window.view3d.reason


def test_click_moves_the_linked_crosshair_and_hover_reports_lps_and_hu(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc = window.document
    axial, coronal = window.views["axial"], window.views["coronal"]
    target = axial.widget_pos_of(np.array([5.0, 0.0, doc.crosshair_lps[2]]))
    before_axial_index = axial.slice.index
    qtbot.mouseClick(axial, Qt.MouseButton.LeftButton, pos=point(target))
    assert abs(doc.crosshair_lps[0] - 5.0) < 1.0 and abs(doc.crosshair_lps[1]) < 1.5
    assert axial.slice.index == before_axial_index  # clicking in a view keeps its own slice
    window.views["coronal"].repaint()
    assert coronal.slice.index == slicing.slice_index(doc.volume, "coronal", doc.crosshair_lps)
    # Hover: the status bar shows the LPS position and the HU under the cursor (the 300 HU sphere).
    QTest.mouseMove(axial, point(axial.widget_pos_of(np.array([5.0, 0.0, doc.crosshair_lps[2]]))))
    text = window.position_label.text()
    assert text.startswith("LPS ") and "HU 300" in text, text


def test_wheel_and_keys_scroll_slices(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    axial = window.views["axial"]
    axial.repaint()
    start = axial.slice.index
    wheel(axial, 1)
    axial.repaint()
    assert axial.slice.index == start + 1  # wheel up: one slice superior
    axial.setFocus()
    QTest.keyClick(axial, Qt.Key.Key_PageDown)
    QTest.keyClick(axial, Qt.Key.Key_PageDown)
    axial.repaint()
    assert axial.slice.index == start - 1
    QTest.keyClick(axial, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ShiftModifier)
    axial.repaint()
    assert axial.slice.index == start + 9  # Shift+PageUp: ten slices
    QTest.keyClick(axial, Qt.Key.Key_PageUp, Qt.KeyboardModifier.ShiftModifier)
    axial.repaint()
    assert axial.slice.index == slicing.n_slices(window.document.volume, "axial") - 1  # clipped at the top


def test_zoom_pan_and_window_level_by_mouse_and_presets(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    doc = window.document
    view = window.views["sagittal"]
    wheel(view, 2, modifiers=Qt.KeyboardModifier.ControlModifier)
    assert view.zoom == pytest.approx(1.15**2)
    center = QPoint(view.width() // 2, view.height() // 2)
    drag(view, center, center + QPoint(30, 10), button=Qt.MouseButton.MiddleButton)
    assert (view.pan.x(), view.pan.y()) == pytest.approx((30.0, 10.0))
    level, width = doc.level, doc.width
    drag(view, center, center + QPoint(50, -20), button=Qt.MouseButton.RightButton)
    assert doc.width == pytest.approx(width + 200.0) and doc.level == pytest.approx(level + 40.0)
    view.setFocus()
    QTest.keyClick(view, Qt.Key.Key_R)
    assert view.zoom == 1.0 and view.pan.x() == 0.0
    QTest.keyClick(window, Qt.Key.Key_2)  # window preset 2: bone
    assert (doc.level, doc.width) == (400.0, 1800.0)


def test_layout_switches_between_four_up_and_one_up(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    views = window.views
    qtbot.mouseClick(views["coronal"], Qt.MouseButton.LeftButton, pos=QPoint(30, 30))
    QTest.keyClick(window, Qt.Key.Key_F)
    assert views["coronal"].isVisible() and not views["axial"].isVisible() and not window.view3d.isVisible()
    QTest.keyClick(window, Qt.Key.Key_4, Qt.KeyboardModifier.ControlModifier)
    assert all(v.isVisible() for v in views.values()) and window.view3d.isVisible()
    qtbot.mouseDClick(views["sagittal"], Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    assert views["sagittal"].isVisible() and not views["coronal"].isVisible()
    QTest.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.view3d.isVisible() and not views["sagittal"].isVisible()


def test_dark_theme_and_empty_window_invites_a_drop(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot)
    r, g, b = pixel_rgb(window.segment_panel, QPoint(5, 5))
    assert max(r, g, b) < 90  # dark panels
    assert pixel_rgb(window.views["axial"], QPoint(5, 5)) == (0, 0, 0)
    assert not window.segment_panel.add_button.isEnabled()


def test_rehearsal_without_a_gl_display_says_why(window, qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = window.rehearsal_panel
    qtbot.mouseClick(panel.save_button, Qt.MouseButton.LeftButton)
    assert "OpenGL" in panel.status.text() and not window.document.case.records_of("camera")
