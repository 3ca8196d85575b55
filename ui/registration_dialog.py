"""The registration dialog: pair the plan's landmarks (image, LPS mm) with points measured on the patient.

The patient points are typed or pasted (x, y, z in mm of the tracker's frame, one landmark per row);
Register calls :func:`workstation.plan_case.register` (paired-point rigid, Fitzpatrick-West TRE) and
shows the FRE per fiducial and the predicted TRE at each trajectory target.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.document import Document
from ui.widgets import spin_box

COLUMNS = ("Landmark", "Image L", "Image P", "Image S", "Patient x", "Patient y", "Patient z", "FRE (mm)")


class RegistrationDialog(QDialog):
    """One row per landmark; editable patient columns; the result below the table."""

    def __init__(self, document: Document, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("registration-dialog")
        self.setWindowTitle("Register image to patient (paired points)")
        self.resize(900, 420)
        self.document = document
        self.result: Any = None
        landmarks = document.case.plan.landmarks if document.case is not None else ()
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Place at least three landmarks in the slice views (L), then enter where each one was "
                                "touched on the patient (tracker frame, mm).", self))
        self.table = QTableWidget(len(landmarks), len(COLUMNS), self)
        self.table.setObjectName("fiducial-table")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for row, landmark in enumerate(landmarks):
            cells = [landmark.name, *(f"{v:.2f}" for v in landmark.position_lps), "", "", "", ""]
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if col < 4 or col == 7:
                    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.table.setItem(row, col, item)
        self.table.resizeColumnsToContents()
        layout.addWidget(self.table)
        form = QFormLayout()
        self.fle = spin_box(self, "fle-mm", 0.0, 20.0, 0.0)
        self.fle.setSpecialValueText("estimate from FRE")
        form.addRow("Fiducial localisation error", self.fle)
        layout.addLayout(form)
        self.summary = QLabel("", self)
        self.summary.setObjectName("registration-summary")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Apply | QDialogButtonBox.StandardButton.Close,
                                        self)
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).setText("Register")
        self.buttons.button(QDialogButtonBox.StandardButton.Apply).clicked.connect(self.register)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)

    def set_patient_points(self, points: Any) -> None:
        """Fill the patient columns (as pasting would)."""
        for row, point in enumerate(np.asarray(points, dtype=float)):
            for axis in range(3):
                self.table.item(row, 4 + axis).setText(f"{point[axis]:.3f}")

    def register(self) -> None:
        from ui.jobs import show_error
        from workstation import plan_case
        from workstation.errors import InputError

        doc = self.document
        try:
            image, patient = [], []
            for row in range(self.table.rowCount()):
                texts = [self.table.item(row, col).text().strip() for col in (4, 5, 6)]
                if not any(texts):
                    continue  # a landmark not touched on the patient
                try:
                    patient.append([float(t) for t in texts])
                except ValueError:
                    raise InputError(f"patient point of {self.table.item(row, 0).text()}: expected three numbers "
                                     f"(mm), got {texts}") from None
                image.append([float(self.table.item(row, col).text()) for col in (1, 2, 3)])
            if len(image) < 3:
                raise InputError(f"registration: {len(image)} paired point(s); at least 3 are needed")
            targets = [t.target_lps for t in doc.case.plan.trajectories] or None
            registration, result = plan_case.register(doc.case, image, patient, targets_lps=targets,
                                                      fle_mm=self.fle.value() or None)
        except Exception as exc:  # bad numbers, collinear points, ...: one message
            show_error(self, "Registration", exc)
            return
        self.result = result
        doc.modified = True
        used = [row for row in range(self.table.rowCount()) if self.table.item(row, 4).text().strip()]
        for row, fre in zip(used, result.fre_per_point_mm, strict=True):
            self.table.item(row, 7).setText(f"{fre:.2f}")
        tre = ", ".join(f"{t.name} {v:.2f} mm" for t, v in zip(doc.case.plan.trajectories, result.predicted_tre_mm,
                                                                 strict=False))
        self.summary.setText(f"FRE {result.fre_mm:.2f} mm (RMS of {len(used)} fiducials); FLE {result.fle_mm:.2f} mm "
                             f"({result.fle_source}); predicted TRE at targets: {tre or 'no trajectory'}. "
                             f"Stored as registration '{registration.id}' (image -> patient).")
