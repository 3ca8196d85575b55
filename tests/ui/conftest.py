"""Qt test set-up: the offscreen platform (set before Qt is imported), private settings, shared cases."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import: no display needed, Qt never aborts
os.environ["TWIN_APP_NO_PROMPT"] = "1"
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.ui.xcb import x_display  # noqa: F401 (the session's Xvfb display for the 3D-view tests)
from workstation.model.case import Case
from workstation.model.volume import Volume

pytest.importorskip("PySide6", reason="the desktop app needs PySide6")
pytest.importorskip("pytestqt", reason="the app tests need pytest-qt")


@pytest.fixture(autouse=True)
def private_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """QSettings in a fresh folder per test: no recent list or geometry leaks between tests or from a user."""
    from PySide6.QtCore import QSettings

    folder = tmp_path_factory.mktemp("settings")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    yield folder


@pytest.fixture(scope="session")
def sample_volume() -> Volume:
    """The bundled sample CT (imported once per session; Volume is immutable)."""
    from workstation.importer import import_path
    from workstation.samples import sample_dicom_dir

    return import_path(sample_dicom_dir(), name="sample").case.volume()


def case_of(volume: Volume, name: str = "test") -> Case:
    case = Case(name=name)
    case.add_volume(volume)
    return case


def phantom_volume() -> Volume:
    """A 40x32x24 CT-like phantom (1 x 1.5 x 2 mm, LPS-aligned, origin (-20, -24, -24)).

    Body -100..0 HU; a 'bright' block of 1000 HU in the patient's right-anterior-superior corner;
    a 300 HU sphere (radius 6 mm) at LPS (5, 0, 0) for segmentation tests.
    """
    k, j, i = np.meshgrid(np.arange(24), np.arange(32), np.arange(40), indexing="ij")
    affine = np.diag([1.0, 1.5, 2.0, 1.0])
    affine[:3, 3] = (-20.0, -24.0, -24.0)
    x, y, z = -20 + i * 1.0, -24 + j * 1.5, -24 + k * 2.0
    array = np.full((24, 32, 40), -50, dtype=np.int16)
    array[(x < -12) & (y < -15) & (z > 12)] = 1000  # right (-x), anterior (-y), superior (+z)
    array[(x - 5) ** 2 + y**2 + z**2 <= 36] = 300
    return Volume(array=array, ijk_to_lps=affine, modality="CT", name="phantom")
