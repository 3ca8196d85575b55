"""Optional deep-learning segmentation: a plug-in point for TotalSegmentator (and other models later).

Nothing here is needed by the classical tools, which never import this module; TotalSegmentator
(and torch) are imported only inside :func:`run_backend`. A backend runs only when its package is
importable AND its weights are already on this machine: this module never downloads anything.
Before a run it checks the weight folders where TotalSegmentator looks for them and refuses with
:class:`BackendUnavailable` (a one-line message saying what to install or where to put what) when
any is missing; during the run it points every HTTP(S) proxy variable at a closed local port, so
that neither a weight download nor TotalSegmentator's usage statistics can reach the network.

Where TotalSegmentator looks for weights (its ``config.get_weights_dir``):
``$TOTALSEG_WEIGHTS_PATH`` if set, else ``$TOTALSEG_HOME_DIR/nnunet/results``, else
``~/.totalsegmentator/nnunet/results`` (``/tmp/.totalsegmentator/...`` when the home folder is ``/``).
Each model is a folder ``Dataset<task id>_<name>`` in there, e.g.
``Dataset297_TotalSegmentator_total_3mm_1559subj`` for the fast 3 mm model.
"""

from __future__ import annotations

import colorsys
import importlib.util
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.volume import Volume
from workstation.progress import ProgressCallback, report

PACKAGE = "totalsegmentator"
# A closed port on the loopback interface: every proxied request fails at once.
_NO_NETWORK_PROXY = "http://127.0.0.1:9"
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


class BackendUnavailable(InputError):  # noqa: N818 - the name says what the user meets
    """A deep-learning backend cannot run here (package or weights missing); the message says why."""


@dataclass(frozen=True)
class TotalSegmentatorModel:
    """One way of running TotalSegmentator.

    Attributes
    ----------
    task : TotalSegmentator's task name (``"total"`` for CT, ``"total_mr"`` for MR).
    fast : use its low-resolution model (3 mm), practical on a CPU.
    task_ids : the nnU-Net datasets (weight folders ``Dataset<id>_*``) the run needs.
    modalities : modalities the model was trained on.
    description : one line for the user.
    """

    task: str
    fast: bool
    task_ids: tuple[int, ...]
    modalities: tuple[str, ...]
    description: str


BACKENDS: dict[str, TotalSegmentatorModel] = {
    "totalsegmentator": TotalSegmentatorModel(
        "total", False, (291, 292, 293, 294, 295), ("CT",), "TotalSegmentator, CT, 117 structures at 1.5 mm"),
    "totalsegmentator-fast": TotalSegmentatorModel(
        "total", True, (297,), ("CT",), "TotalSegmentator, CT, 117 structures at 3 mm (fast, CPU-friendly)"),
    "totalsegmentator-mr": TotalSegmentatorModel(
        "total_mr", False, (730, 731), ("MR",), "TotalSegmentator, MR, 50 structures at 1.5 mm"),
    "totalsegmentator-mr-fast": TotalSegmentatorModel(
        "total_mr", True, (732,), ("MR",), "TotalSegmentator, MR, 50 structures at 3 mm (fast)"),
}


def totalsegmentator_weights_dir() -> Path:
    """The folder where TotalSegmentator looks for its weights (same rule as its own config)."""
    if os.environ.get("TOTALSEG_WEIGHTS_PATH"):
        return Path(os.environ["TOTALSEG_WEIGHTS_PATH"])
    if os.environ.get("TOTALSEG_HOME_DIR"):
        home = Path(os.environ["TOTALSEG_HOME_DIR"])
    else:
        home = (Path("/tmp") if str(Path.home()) == "/" else Path.home()) / ".totalsegmentator"
    return home / "nnunet" / "results"


def _weight_folder(weights_dir: Path, task_id: int) -> Path | None:
    if not weights_dir.is_dir():
        return None
    return next((p for p in sorted(weights_dir.glob(f"Dataset{task_id}_*")) if p.is_dir()), None)


def missing_weights(name: str) -> list[int]:
    """Task ids of backend ``name`` whose weight folder is absent."""
    weights_dir = totalsegmentator_weights_dir()
    return [tid for tid in _backend(name).task_ids if _weight_folder(weights_dir, tid) is None]


def _package_installed() -> bool:
    try:
        return importlib.util.find_spec(PACKAGE) is not None
    except (ImportError, ValueError):
        return False


def _backend(name: str) -> TotalSegmentatorModel:
    if name not in BACKENDS:
        raise InputError(f"unknown segmentation backend {name!r}; available: {', '.join(BACKENDS)}")
    return BACKENDS[name]


def _problem(name: str) -> str:
    """Why backend ``name`` cannot run, or ``""`` when it can."""
    weights_dir = totalsegmentator_weights_dir()
    if not _package_installed():
        return (f"TotalSegmentator is not installed: pip install totalsegmentator and place its weights in "
                f"{weights_dir} (or set TOTALSEG_WEIGHTS_PATH)")
    missing = missing_weights(name)
    if missing:
        folders = ", ".join(f"Dataset{tid}_*" for tid in missing)
        return (f"TotalSegmentator weights not found in {weights_dir}: missing {folders}; copy them there (or set "
                "TOTALSEG_WEIGHTS_PATH) - this workstation never downloads them")
    return ""


def available_backends() -> dict[str, str]:
    """Every known backend with its status: ``"ready: ..."`` or why it cannot run (one line each).

    Cheap: looks for the package and the weight folders without importing TotalSegmentator or torch.
    """
    statuses = {}
    for name, model in BACKENDS.items():
        problem = _problem(name)
        statuses[name] = f"ready: {model.description}" if not problem else f"unavailable: {problem}"
    return statuses


@contextmanager
def _offline() -> Iterator[None]:
    """Environment under which TotalSegmentator finds the checked weights and cannot reach the network."""
    changes = {variable: _NO_NETWORK_PROXY for variable in _PROXY_VARIABLES}
    changes.update(NO_PROXY="", no_proxy="", HF_HUB_OFFLINE="1",
                   TOTALSEG_WEIGHTS_PATH=str(totalsegmentator_weights_dir()))
    saved = {key: os.environ.get(key) for key in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _ras_affine(ijk_to_lps: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(ijk_to_lps, dtype=float)


def _on_volume_grid(labels_ijk: NDArray[Any], affine_ras: NDArray[np.float64], volume: Volume) -> NDArray[Any]:
    """Labels given as [i, j, k] on a NIfTI (RAS) grid, moved onto ``volume``'s [k, j, i] grid (nearest)."""
    from scipy.ndimage import affine_transform

    source = np.transpose(np.asarray(labels_ijk), (2, 1, 0))
    source_affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_ras
    if source.shape == volume.shape and np.allclose(source_affine, volume.ijk_to_lps, atol=1e-3):
        return source
    swap = np.eye(4)[[2, 1, 0, 3]]  # (i, j, k) <-> (k, j, i)
    matrix = swap @ np.linalg.inv(source_affine) @ volume.ijk_to_lps @ swap
    return affine_transform(source, matrix[:3, :3], offset=matrix[:3, 3], output_shape=volume.shape, order=0,
                            mode="constant", cval=0)


def _color(value: int) -> tuple[float, float, float]:
    """A distinct, repeatable colour per label value (golden-ratio hues)."""
    hue = (value * 0.618033988749895) % 1.0
    return tuple(round(c, 4) for c in colorsys.hsv_to_rgb(hue, 0.55, 0.9))  # type: ignore[return-value]


def run_backend(name: str, volume: Volume, *, progress: ProgressCallback | None = None) -> LabelMap:
    """Segment ``volume`` with deep-learning backend ``name`` (see :func:`available_backends`).

    Parameters
    ----------
    name : a key of :data:`BACKENDS`, e.g. ``"totalsegmentator-fast"``.
    volume : the CT (or MR, for the ``-mr`` backends), values in HU for CT.
    progress : called as ``progress(done, total, message)``; returning ``False`` cancels before the
        model starts (a running model cannot be interrupted).

    Returns
    -------
    LabelMap : on ``volume``'s grid, values and segment names from TotalSegmentator's class map
        (only the structures found), ``provenance["method"] == "deep-learning"``.

    Raises
    ------
    BackendUnavailable : the package is not installed or importable, or its weights are absent
        (checked before anything is started; nothing is downloaded).
    InputError : unknown backend, or a volume of a modality the model was not trained on.
    """
    model = _backend(name)
    if volume.modality not in (*model.modalities, "OT"):
        raise InputError(f"backend {name!r} segments {'/'.join(model.modalities)}; volume "
                         f"{volume.id or volume.name!r} is {volume.modality}")
    problem = _problem(name)
    if problem:
        raise BackendUnavailable(problem)
    report(progress, 0, 3, f"starting {model.description}")
    try:
        import nibabel as nib
        from totalsegmentator.map_to_binary import class_map
        from totalsegmentator.python_api import totalsegmentator
    except Exception as exc:  # torch or another dependency missing or broken
        raise BackendUnavailable(f"TotalSegmentator is installed but cannot be imported "
                                 f"({type(exc).__name__}: {str(exc).strip().splitlines()[0][:120] if str(exc) else ''})"
                                 ) from None
    names: dict[int, str] = {int(k): str(v) for k, v in class_map[model.task].items()}
    image = nib.Nifti1Image(np.transpose(np.asarray(volume.array), (2, 1, 0)), _ras_affine(volume.ijk_to_lps))
    report(progress, 1, 3, f"running {model.description} (this can take minutes on a CPU)")
    with _offline(), tempfile.TemporaryDirectory(prefix="twin-totalseg-") as folder:
        output = Path(folder) / "segmentation.nii.gz"
        try:
            result = totalsegmentator(image, output, ml=True, fast=model.fast, task=model.task, quiet=True)
        except SystemExit as exc:  # TotalSegmentator exits on licence and set-up problems
            raise BackendUnavailable(f"TotalSegmentator stopped (exit code {exc.code}) before segmenting") from None
        except Exception as exc:
            message = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise InputError(f"TotalSegmentator failed: {message}") from None
        if result is None:
            result = nib.load(str(output))
        labels = _on_volume_grid(np.asarray(result.dataobj), np.asarray(result.affine), volume)
    report(progress, 2, 3, "collecting structures")
    labels = np.rint(labels).astype(np.int64)
    present = [int(v) for v in np.unique(labels) if v > 0]
    top = max(present, default=0)
    array = labels.astype(np.uint8 if top < 256 else np.uint16)
    segments = tuple(Segment(value=v, name=names.get(v, f"label {v}"), color_rgb=_color(v)) for v in present)
    report(progress, 3, 3, f"{len(segments)} structures found")
    return LabelMap(array=array, ijk_to_lps=volume.ijk_to_lps, segments=segments, name=name,
                    source_volume_id=volume.id,
                    provenance={"method": "deep-learning", "backend": name, "task": model.task, "fast": model.fast,
                                "task_ids": list(model.task_ids), "totalsegmentator_version": _version()})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("TotalSegmentator")
    except PackageNotFoundError:
        return "unknown"
