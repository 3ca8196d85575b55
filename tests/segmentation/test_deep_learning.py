"""The optional deep-learning plug-in point: clear refusals, weights looked up where TotalSegmentator looks.

No model output is ever faked here: an "installed" package is simulated only through
``importlib.util.find_spec`` so that the weights check can be exercised, and the package
itself stays unimportable, so any attempt to start it would fail loudly.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segmentation import deep_learning
from segmentation.deep_learning import (
    BACKENDS,
    BackendUnavailable,
    available_backends,
    run_backend,
    totalsegmentator_weights_dir,
)
from workstation.errors import InputError
from workstation.model import Volume

ROOT = Path(__file__).resolve().parents[2]


def ct() -> Volume:
    return Volume.from_geometry(np.zeros((4, 5, 6), np.int16), spacing_mm=[1, 1, 2], modality="CT", id="ct")


@pytest.fixture
def weights_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty weights folder, with every variable TotalSegmentator reads pointing into tmp_path."""
    weights = tmp_path / "weights"
    weights.mkdir()
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(weights))
    monkeypatch.delenv("TOTALSEG_HOME_DIR", raising=False)
    return weights


@pytest.fixture
def package_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """``find_spec`` reports TotalSegmentator as installed, while importing it still fails."""
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        if name == "totalsegmentator":
            return importlib.machinery.ModuleSpec("totalsegmentator", loader=None)
        return real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setitem(sys.modules, "totalsegmentator", None)  # an import attempt raises ImportError


@pytest.fixture
def package_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "totalsegmentator" else real_find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_absent_package_gives_one_clear_line(weights_env: Path, package_absent: None) -> None:
    with pytest.raises(BackendUnavailable) as err:
        run_backend("totalsegmentator-fast", ct())
    message = str(err.value)
    assert message.startswith("TotalSegmentator is not installed: pip install totalsegmentator")
    assert f"place its weights in {weights_env}" in message and "\n" not in message
    assert isinstance(err.value, InputError)
    assert all(status.startswith("unavailable: TotalSegmentator is not installed") for status in
               available_backends().values())


def test_absent_weights_are_refused_before_anything_starts(weights_env: Path, package_installed: None) -> None:
    with pytest.raises(BackendUnavailable) as err:
        run_backend("totalsegmentator-fast", ct())
    message = str(err.value)
    assert message.startswith(f"TotalSegmentator weights not found in {weights_env}: missing Dataset297_*")
    assert "never downloads" in message and "\n" not in message
    (weights_env / "Dataset291_TotalSegmentator_part1_organs_1559subj").mkdir()
    with pytest.raises(BackendUnavailable, match=r"missing Dataset292_\*, Dataset293_\*, Dataset294_\*, Dataset295_\*"):
        run_backend("totalsegmentator", ct())
    statuses = available_backends()
    assert set(statuses) == set(BACKENDS)
    assert "weights not found" in statuses["totalsegmentator-fast"]


def test_present_weights_make_it_ready_but_an_unimportable_package_is_reported(
        weights_env: Path, package_installed: None) -> None:
    (weights_env / "Dataset297_TotalSegmentator_total_3mm_1559subj").mkdir()
    assert available_backends()["totalsegmentator-fast"].startswith("ready: TotalSegmentator, CT")
    assert available_backends()["totalsegmentator"].startswith("unavailable:")
    with pytest.raises(BackendUnavailable, match="installed but cannot be imported"):
        run_backend("totalsegmentator-fast", ct())


def test_weights_folder_follows_totalsegmentator_rules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TOTALSEG_WEIGHTS_PATH", raising=False)
    monkeypatch.delenv("TOTALSEG_HOME_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert totalsegmentator_weights_dir() == tmp_path / "home" / ".totalsegmentator" / "nnunet" / "results"
    monkeypatch.setenv("TOTALSEG_HOME_DIR", str(tmp_path / "ts"))
    assert totalsegmentator_weights_dir() == tmp_path / "ts" / "nnunet" / "results"
    monkeypatch.setenv("TOTALSEG_WEIGHTS_PATH", str(tmp_path / "w"))
    assert totalsegmentator_weights_dir() == tmp_path / "w"


def test_unknown_backend_and_wrong_modality(weights_env: Path) -> None:
    with pytest.raises(InputError, match="unknown segmentation backend 'nnunet'; available: totalsegmentator"):
        run_backend("nnunet", ct())
    mr = Volume.from_geometry(np.zeros((2, 3, 4)), spacing_mm=[1, 1, 1], modality="MR")
    with pytest.raises(InputError, match=r"segments CT; volume .* is MR"):
        run_backend("totalsegmentator-fast", mr)


def test_offline_environment_blocks_proxies_and_is_restored(weights_env: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    with deep_learning._offline():
        assert os.environ["HTTPS_PROXY"] == os.environ["http_proxy"] == "http://127.0.0.1:9"
        assert os.environ["TOTALSEG_WEIGHTS_PATH"] == str(weights_env)
    assert os.environ["HTTPS_PROXY"] == "http://proxy.example:3128" and "http_proxy" not in os.environ


def test_model_output_grid_is_mapped_back_to_the_volume_grid() -> None:
    """The NIfTI glue (RAS, [i, j, k]) round-trips onto the volume grid, also from a flipped grid."""
    volume = Volume.from_geometry(np.zeros((4, 5, 6), np.int16), spacing_mm=[0.8, 0.9, 2.0],
                                  origin_lps=[10, -20, 30], modality="CT")
    labels = np.arange(4 * 5 * 6).reshape(4, 5, 6) % 7
    ras = deep_learning._ras_affine(volume.ijk_to_lps)
    same = deep_learning._on_volume_grid(np.transpose(labels, (2, 1, 0)), ras, volume)
    np.testing.assert_array_equal(same, labels)
    flip = np.eye(4)
    flip[0, 0], flip[0, 3] = -1, 5  # i reversed
    flipped = deep_learning._on_volume_grid(np.transpose(labels[:, :, ::-1], (2, 1, 0)), ras @ flip, volume)
    np.testing.assert_array_equal(flipped, labels)


def test_classical_segmentation_modules_never_import_the_deep_learning_backend() -> None:
    offenders = []
    for path in (ROOT / "segmentation").rglob("*.py"):
        if path.name == "deep_learning.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [f"{node.module or ''}.{a.name}" for a in node.names]
            else:
                continue
            offenders += [f"{path.name}: {n}" for n in names
                          if "deep_learning" in n or n.lstrip(".").startswith("totalsegmentator")]
    assert offenders == []
