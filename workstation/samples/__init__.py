"""Sample data shipped with the workstation (see each folder's NOTICE)."""

from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent


def sample_dicom_dir(name: str = "ct-abdomen-20") -> Path:
    """Folder of the bundled sample DICOM series ``name``."""
    path = SAMPLES_DIR / name / "dicom"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: bundled sample {name!r} is missing from this installation")
    return path
