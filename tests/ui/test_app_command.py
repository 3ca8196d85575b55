"""``twin app --sample``: the real command opens the bundled sample case and shows it (offscreen)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

ROOT = Path(__file__).resolve().parents[2]


def run_twin(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(home), "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "workstation.cli.main", "app", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_twin_app_sample_shows_the_sample_ct(tmp_path: Path) -> None:
    shot = tmp_path / "app.png"
    proc = run_twin("--sample", "--screenshot", str(shot), home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "slice views show the case" in proc.stdout
    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 600
    # The axial view (top-left quarter of the viewports) shows CT: many distinct grey levels, not an empty view.
    colors = [image.pixelColor(x, y) for x in range(40, image.width() // 3, 7)
              for y in range(60, image.height() // 2, 7)]
    grays = {c.red() for c in colors if c.red() == c.green() == c.blue()}
    assert len(grays) > 60
    assert np.isfinite(float(proc.stdout.split("show the case ")[1].split(" s")[0]))


def test_twin_app_on_an_empty_folder_reports_why_and_exits_3(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_twin(str(empty), "--screenshot", str(tmp_path / "x.png"), home=tmp_path)
    assert proc.returncode == 3 and not (tmp_path / "x.png").exists()
    assert "Traceback" not in proc.stderr
