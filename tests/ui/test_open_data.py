"""Opening data like a user: the sample, DICOM through the series browser, volume files, drops, case bundles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QDialogButtonBox, QMessageBox

from tests.ui.conftest import phantom_volume
from tests.ui.helpers import wait_idle, window_with
from ui.main_window import MainWindow
from workstation.io.volume_files import write_volume
from workstation.samples import sample_dicom_dir


def action(window: MainWindow, name: str):  # type: ignore[no-untyped-def]
    return next(a for a in window.actions() if a.objectName() == name)


def error_boxes(window: MainWindow) -> list[QMessageBox]:
    return [w for w in window.findChildren(QMessageBox) if w.objectName() == "error-box" and w.isVisible()]


def test_open_sample_from_the_file_menu(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot)
    action(window, "open-sample").trigger()
    assert window.busy  # the import runs in a worker thread; the window stays responsive
    wait_idle(qtbot, window)
    volume = window.document.volume
    assert volume is not None and volume.shape == (20, 512, 512) and volume.modality == "CT"
    assert "sample-ct-abdomen-20" in window.windowTitle()
    assert not error_boxes(window)


def test_cancel_stops_the_import_without_an_error_message(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot)
    job = window.open_sample()
    job.cancel()  # what the progress dialog's Cancel button does
    wait_idle(qtbot, window)
    assert window.document.volume is None
    assert type(job.error).__name__ == "CancelledError" and not error_boxes(window)


@pytest.fixture
def three_series(tmp_path: Path) -> Path:
    """The sample's 20 files re-labelled as three series: 17 slices, 2 slices, and a lone slice."""
    files = sorted(sample_dicom_dir().iterdir())
    groups = [("1.2.826.0.1.3680043.8.498.1", 1, "big", files[:17]),
              ("1.2.826.0.1.3680043.8.498.2", 2, "small", files[17:19]),
              ("1.2.826.0.1.3680043.8.498.3", 3, "lone", files[19:])]
    for uid, number, description, members in groups:
        for path in members:
            ds = pydicom.dcmread(path)
            ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = uid, number, description
            ds.save_as(tmp_path / f"{description}-{path.name}")
    return tmp_path


def test_series_browser_lists_every_series_and_why_one_cannot_load(qtbot, three_series: Path) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot)
    window.open_path(three_series)
    qtbot.waitUntil(lambda: getattr(window, "series_browser", None) is not None and window.series_browser.isVisible(),
                    timeout=30000)
    browser = window.series_browser
    table = browser.table
    rows = {table.item(r, 2).text(): table.item(r, 7).text() for r in range(table.rowCount())}
    assert set(rows) == {"big", "small", "lone"}
    assert rows["big"] == "volume" and rows["lone"].startswith("not a volume: a single slice")
    assert browser.chosen().description == "big"  # the largest volume is proposed
    assert all(not table.item(r, 0).icon().isNull() for r in range(table.rowCount()))  # thumbnails
    lone_row = next(r for r in range(table.rowCount()) if table.item(r, 2).text() == "lone")
    table.selectRow(lone_row)
    assert browser.chosen() is None or browser.chosen().description != "lone"
    small_row = next(r for r in range(table.rowCount()) if table.item(r, 2).text() == "small")
    rect = table.visualItemRect(table.item(small_row, 2))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert browser.chosen().description == "small"
    qtbot.mouseClick(browser.buttons.button(QDialogButtonBox.StandardButton.Open), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.document.volume is not None, timeout=30000)
    wait_idle(qtbot, window)
    assert window.document.volume.shape[0] == 2


def drop(window: MainWindow, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_drop_a_nifti_file_opens_it_in_lps(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    volume = phantom_volume()
    path = tmp_path / "phantom.nii.gz"
    write_volume(volume, path)
    window = window_with(qtbot)
    drop(window, path)
    qtbot.waitUntil(lambda: window.document.volume is not None, timeout=30000)
    wait_idle(qtbot, window)
    opened = window.document.volume
    np.testing.assert_allclose(opened.ijk_to_lps, volume.ijk_to_lps, atol=1e-4)
    np.testing.assert_array_equal(opened.array, volume.array)


def test_a_damaged_file_gives_one_clear_message(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.nrrd"
    bad.write_bytes(b"NRRD0004\ntype: short\nsizes: 10 10\nthis is not nrrd\n")
    window = window_with(qtbot)
    window.open_path(bad)
    wait_idle(qtbot, window)
    boxes = error_boxes(window)
    assert len(boxes) == 1 and "broken.nrrd" in boxes[0].text() and "Traceback" not in boxes[0].text()
    assert "\n" not in boxes[0].text()
    assert window.document.volume is None


def test_save_as_then_reopen_from_recent_cases(qtbot, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtWidgets import QFileDialog

    window = window_with(qtbot, phantom_volume())
    window.document.add_segment("tumour")
    target = tmp_path / "saved-case"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    action(window, "save-case-as").trigger()
    wait_idle(qtbot, window)
    assert (target / "manifest.json").is_file() and not window.document.modified
    assert str(target.resolve()) in window.recent()
    window.close()

    second = window_with(qtbot)
    recent = second.recent_menu.actions()
    assert recent and recent[0].text() == str(target.resolve())
    recent[0].trigger()
    qtbot.waitUntil(lambda: second.document.volume is not None, timeout=30000)
    wait_idle(qtbot, second)
    assert [s.name for s in second.document.segments()] == ["tumour"]
    assert second.document.case_path == target.resolve()


def test_a_case_with_two_volumes_switches_volume_from_the_toolbar(qtbot) -> None:  # type: ignore[no-untyped-def]
    from PySide6.QtTest import QTest

    from workstation.model.case import Case

    first = phantom_volume()
    second = first.with_array(first.array[:, ::-1, :].copy(), name="flipped", id="flipped")
    case = Case(name="two")
    case.add_volume(first)
    case.add_volume(second)
    window = window_with(qtbot)
    window.document.set_case(case)
    combo = window.volume_combo
    assert combo.isEnabled() and combo.count() == 2 and window.document.volume.id == "phantom"
    combo.setFocus()
    QTest.keyClick(combo, Qt.Key.Key_Down)
    assert window.document.volume.id == "flipped"
    assert window.document.label_map.source_volume_id == "flipped"
    np.testing.assert_array_equal(window.views["axial"]._current_slice().pixels,
                                  np.take(second.array, window.views["axial"].slice.index, axis=0))


def test_closing_during_an_import_cancels_it_cleanly(qtbot) -> None:  # type: ignore[no-untyped-def]
    window = window_with(qtbot)
    job = window.open_sample()
    window.close()  # the worker is cancelled and waited for; nothing reports to a closed window
    assert not job.running and type(job.error).__name__ == "CancelledError"
    assert window.document.volume is None and not error_boxes(window)


def test_series_thumbnails_show_the_middle_plane(three_series: Path) -> None:
    from ui.series_browser import THUMBNAIL_PX, series_thumbnails
    from workstation.dicom.scan import scan_path

    scan = scan_path(three_series)
    thumbs = series_thumbnails(scan)
    assert set(thumbs) == {c.number for c in scan.candidates}
    big = thumbs[next(c.number for c in scan.candidates if c.description == "big")]
    assert big.shape == (THUMBNAIL_PX, THUMBNAIL_PX) and big.dtype == np.uint8
    # The abdomen (soft tissue) in the middle is brighter than the air in the corners.
    centre, corner = big[24:40, 24:40].mean(), big[:6, :6].mean()
    assert centre > corner + 60, (centre, corner)
