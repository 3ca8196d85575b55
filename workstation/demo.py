"""The headless demo on the bundled sample case: what ``make demo`` and ``twin demo`` run."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from workstation.bundle import save_case
from workstation.importer import import_path
from workstation.io.atomic import write_text_atomic
from workstation.preview import write_previews
from workstation.progress import ProgressCallback
from workstation.samples import sample_dicom_dir


def run_demo(out_dir: str | os.PathLike[str], *, progress: ProgressCallback | None = None,
             say: Callable[[str], Any] = print) -> list[tuple[Path, str]]:
    """Import the sample CT, save its case bundle, write a summary and previews into ``out_dir``.

    Returns ``(path, what it is)`` for every output.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = sample_dicom_dir()
    say(f"importing the bundled sample CT ({source.parent.name}, 20 slices, JPEG 2000) ...")
    result = import_path(source, name="sample-ct-abdomen-20", progress=progress)
    for message in result.messages:
        say(f"  {message}")
    made: list[tuple[Path, str]] = []
    case_path = save_case(result.case, out / "case", progress=progress)
    made.append((case_path, "case bundle (manifest.json, NRRD volume, de-identified headers, SHA-256 of every file)"))
    volume = result.case.volume()
    for path in write_previews(volume, out):
        made.append((path, f"{path.stem.split('-')[-1]} preview through the volume centre, with orientation letters"))
    values = volume.array
    summary = {
        "case": str(case_path),
        "coordinate_system": "LPS",
        "units": "mm",
        "volume": volume.geometry_dict(),
        "hounsfield_units": {"min": float(values.min()), "max": float(values.max()),
                             "mean": round(float(values.mean()), 2),
                             "fraction_above_150": round(float(np.mean(values > 150)), 5)},
        "extent_mm": [round(float(x), 2) for x in (volume.corners_lps().max(0) - volume.corners_lps().min(0))],
        "deidentification": result.case.deidentification,
        "log": result.case.log,
    }
    summary_path = out / "summary.json"
    write_text_atomic(summary_path, json.dumps(summary, indent=1))
    made.append((summary_path, "summary: geometry (ijk_to_lps), HU range, import log, de-identification"))
    return made
