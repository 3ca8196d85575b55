"""The DICOM series browser: every candidate series of a folder/zip/DICOMDIR, and why some cannot load."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from workstation.dicom.scan import ScanResult, SeriesCandidate

THUMBNAIL_PX = 64


def series_thumbnails(scan: ScanResult, *, size: int = THUMBNAIL_PX) -> dict[int, NDArray[np.uint8]]:
    """(size, size) 8-bit pictures of each series' middle plane, by candidate number (no Qt: runs in the
    scan's worker thread). A plane that cannot be decoded gets no thumbnail."""
    from workstation.dicom.pixels import PlaneDecoder

    decode = PlaneDecoder()
    out: dict[int, NDArray[np.uint8]] = {}
    for candidate in scan.candidates:
        frames = sorted(candidate.frames, key=lambda f: f.instance_number)
        frame = frames[len(frames) // 2]
        try:
            values = np.asarray(decode(frame), dtype=np.float32) * frame.rescale_slope + frame.rescale_intercept
        except Exception:
            continue
        rows, cols = values.shape[:2]
        step = max(1, int(np.ceil(max(rows, cols) / size)))
        small = values[::step, ::step]
        low, high = np.percentile(small, [1, 99])
        gray = np.clip((small - low) * (255.0 / max(high - low, 1e-6)), 0, 255).astype(np.uint8)
        canvas = np.zeros((size, size), dtype=np.uint8)
        r0, c0 = (size - gray.shape[0]) // 2, (size - gray.shape[1]) // 2
        canvas[r0:r0 + gray.shape[0], c0:c0 + gray.shape[1]] = gray[:size, :size]
        out[candidate.number] = canvas
    return out


COLUMNS = ("#", "Modality", "Description", "Orientation", "Size (i x j x k)", "Spacing (mm)", "Files", "Status")


def _size(candidate: SeriesCandidate) -> str:
    stack = candidate.stacks[0] if candidate.stacks else None
    return f"{candidate.columns} x {candidate.rows} x {stack.n_output_slices if stack else len(candidate.frames)}"


def _spacing(candidate: SeriesCandidate) -> str:
    ps = candidate.frames[0].pixel_spacing_mm
    stack = candidate.stacks[0] if candidate.stacks else None
    if not ps or stack is None:
        return "-"
    return f"{ps[1]:.3g} x {ps[0]:.3g} x {stack.slice_spacing_mm:.3g}"


def status_text(candidate: SeriesCandidate) -> str:
    """'volume' (with notes), or 'not a volume: <why>'."""
    if candidate.usable:
        notes = "; ".join(candidate.notes)
        extra = f" ({len(candidate.stacks)} volumes)" if len(candidate.stacks) > 1 else ""
        return "volume" + extra + (f"; {notes}" if notes else "")
    return f"not a volume: {candidate.problem or 'no stack of planes'}"


class SeriesBrowser(QDialog):
    """Pick one series of a scan; unusable series are listed greyed out with the reason."""

    def __init__(self, scan: ScanResult, parent: QWidget | None = None, *,
                 thumbnails: dict[int, NDArray[np.uint8]] | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("series-browser")
        self.setWindowTitle(f"Series in {scan.source}")
        self.resize(1100, 420)
        self.scan = scan
        layout = QVBoxLayout(self)
        summary = (f"{scan.n_files} files, {len(scan.candidates)} series, {len(scan.usable())} forming a volume"
                   + (f", {len(scan.rejected)} file(s) set aside" if scan.rejected else ""))
        layout.addWidget(QLabel(summary, self))
        self.table = QTableWidget(len(scan.candidates), len(COLUMNS), self)
        self.table.setObjectName("series-table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        for row, candidate in enumerate(scan.candidates):
            values = (str(candidate.number), candidate.modality or "??", candidate.description or "(no description)",
                      candidate.orientation, _size(candidate), _spacing(candidate), str(candidate.n_files),
                      status_text(candidate))
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value)
                if not candidate.usable:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable)
                    item.setForeground(QColor(140, 140, 140))
                self.table.setItem(row, col, item)
        thumbnails = thumbnails or {}
        if thumbnails:
            self.table.setIconSize(QPixmap(THUMBNAIL_PX, THUMBNAIL_PX).size())
            for row, candidate in enumerate(scan.candidates):
                picture = thumbnails.get(candidate.number)
                if picture is not None:
                    picture = np.ascontiguousarray(picture)
                    image = QImage(picture.data, picture.shape[1], picture.shape[0], picture.shape[1],
                                   QImage.Format.Format_Grayscale8).copy()
                    self.table.item(row, 0).setIcon(QIcon(QPixmap.fromImage(image)))
                self.table.setRowHeight(row, THUMBNAIL_PX + 4)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.doubleClicked.connect(self._double_clicked)
        layout.addWidget(self.table)
        if scan.rejected:
            shown = "\n".join(f"{f}: {r}" for f, r in scan.rejected[:5])
            more = f"\n... and {len(scan.rejected) - 5} more" if len(scan.rejected) > 5 else ""
            rejected = QLabel(f"Set aside:\n{shown}{more}", self)
            rejected.setObjectName("rejected-files")
            layout.addWidget(rejected)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open | QDialogButtonBox.StandardButton.Cancel,
                                        self)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        usable = scan.usable()
        if usable:
            default = scan.default()
            self.table.selectRow(scan.candidates.index(default))
        self._selection_changed()

    def chosen(self) -> SeriesCandidate | None:
        rows = {index.row() for index in self.table.selectionModel().selectedRows()}
        if not rows:
            return None
        candidate = self.scan.candidates[min(rows)]
        return candidate if candidate.usable else None

    def _selection_changed(self) -> None:
        self.buttons.button(QDialogButtonBox.StandardButton.Open).setEnabled(self.chosen() is not None)

    def _double_clicked(self) -> None:
        if self.chosen() is not None:
            self.accept()
