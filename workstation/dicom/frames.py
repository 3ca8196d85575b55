"""One 2-D image of a DICOM file (a classic slice or one frame of an enhanced multi-frame file)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

# Attributes that may tell apart several volumes stored in one series (time points, echoes, ...).
SPLIT_ATTRIBUTES = (
    "TemporalPositionIdentifier",
    "TemporalPositionIndex",
    "TriggerTime",
    "EchoNumbers",
    "EchoTime",
    "DiffusionBValue",
    "AcquisitionNumber",
    "ImageType",
    "StackID",
    "DimensionIndex",
)

CLASSIC_SPLIT_ATTRIBUTES = tuple(a for a in SPLIT_ATTRIBUTES if a not in ("TemporalPositionIndex", "StackID",
                                                                      "DimensionIndex"))

NATIVE_TRANSFER_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


class FrameError(Exception):
    """A file or frame that cannot be used, with the reason (becomes a rejection line)."""


@dataclass
class Frame:
    """One image plane with its geometry, read from a header (pixels decoded later).

    ``position_lps`` is ImagePositionPatient (centre of the first pixel), ``row_dir`` and
    ``col_dir`` the ImageOrientationPatient cosines (directions of increasing column and
    row index), ``pixel_spacing_mm`` the DICOM order (between rows, between columns).
    """

    path: Path
    display: str
    dataset: Any
    frame_index: int | None
    rows: int
    columns: int
    position_lps: NDArray[np.float64] | None
    row_dir: NDArray[np.float64] | None
    col_dir: NDArray[np.float64] | None
    pixel_spacing_mm: tuple[float, float] | None
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    instance_number: int = 0
    split_values: dict[str, Any] = field(default_factory=dict)

    @property
    def has_geometry(self) -> bool:
        return self.position_lps is not None and self.row_dir is not None and self.pixel_spacing_mm is not None

    @property
    def normal(self) -> NDArray[np.float64]:
        assert self.row_dir is not None and self.col_dir is not None
        n = np.cross(self.row_dir, self.col_dir)
        return n / np.linalg.norm(n)


def _floats(value: Any, n: int) -> NDArray[np.float64] | None:
    if value is None:
        return None
    try:
        arr = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if arr.shape == (n,) and np.all(np.isfinite(arr)) else None


def _orientation(iop: NDArray[np.float64] | None) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    if iop is None:
        return None
    row, col = iop[:3], iop[3:]
    nr, nc = np.linalg.norm(row), np.linalg.norm(col)
    if nr < 0.5 or nc < 0.5:
        return None
    row, col = row / nr, col / nc
    if abs(float(np.dot(row, col))) > 1e-3:
        return None
    return row, col


def _first(seq: Any) -> Any:
    return seq[0] if seq else None


def _group_item(ds: Any, per_frame: Any, name: str) -> Any:
    """Item of a functional-group macro, per-frame first, then shared."""
    for container in (per_frame, _first(ds.get("SharedFunctionalGroupsSequence"))):
        if container is not None and name in container:
            return _first(container[name].value)
    return None


def _value(ds: Any, keyword: str) -> Any:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return tuple(str(v) for v in value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def frames_of(dataset: Any, path: Path, display: str) -> list[Frame]:
    """The image planes a dataset holds; raises :class:`FrameError` with the reason when none."""
    if "PixelData" not in dataset and "FloatPixelData" not in dataset and "DoubleFloatPixelData" not in dataset:
        sop = str(dataset.get("SOPClassUID", "")) or "unknown SOP class"
        raise FrameError(f"no pixel data ({sop})")
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    if rows < 1 or columns < 1:
        raise FrameError("no Rows/Columns")
    if int(dataset.get("SamplesPerPixel", 1) or 1) != 1:
        raise FrameError(f"colour image (SamplesPerPixel={dataset.SamplesPerPixel}): not a scalar volume")
    n_frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if "PerFrameFunctionalGroupsSequence" in dataset:
        return _enhanced_frames(dataset, path, display, rows, columns, n_frames)
    if n_frames > 1:
        raise FrameError(f"{n_frames} frames without per-frame geometry (functional groups)")
    orientation = _orientation(_floats(dataset.get("ImageOrientationPatient"), 6))
    spacing = _floats(dataset.get("PixelSpacing"), 2)
    split = {k: _value(dataset, k) for k in CLASSIC_SPLIT_ATTRIBUTES if k in dataset}
    return [Frame(
        path=path, display=display, dataset=dataset, frame_index=None, rows=rows, columns=columns,
        position_lps=_floats(dataset.get("ImagePositionPatient"), 3),
        row_dir=None if orientation is None else orientation[0],
        col_dir=None if orientation is None else orientation[1],
        pixel_spacing_mm=None if spacing is None or np.any(spacing <= 0) else (float(spacing[0]), float(spacing[1])),
        rescale_slope=float(dataset.get("RescaleSlope", 1) or 1),
        rescale_intercept=float(dataset.get("RescaleIntercept", 0) or 0),
        instance_number=int(dataset.get("InstanceNumber", 0) or 0),
        split_values=split,
    )]


def _enhanced_frames(ds: Any, path: Path, display: str, rows: int, columns: int, n_frames: int) -> list[Frame]:
    per_frame = ds.PerFrameFunctionalGroupsSequence
    if len(per_frame) != n_frames:
        raise FrameError(f"{len(per_frame)} per-frame functional groups for {n_frames} frames")
    # The dimension that is the in-stack position does not tell volumes apart: drop it.
    pointers = [int(item.get("DimensionIndexPointer", 0) or 0) for item in ds.get("DimensionIndexSequence", [])]
    skip = {i for i, p in enumerate(pointers) if p in (0x00209057, 0x00200032)}
    frames = []
    for index, group in enumerate(per_frame):
        position = _group_item(ds, group, "PlanePositionSequence")
        orient = _group_item(ds, group, "PlaneOrientationSequence")
        measures = _group_item(ds, group, "PixelMeasuresSequence")
        transform = _group_item(ds, group, "PixelValueTransformationSequence")
        content = _group_item(ds, group, "FrameContentSequence")
        echo = _group_item(ds, group, "MREchoSequence")
        orientation = _orientation(_floats(None if orient is None else orient.get("ImageOrientationPatient"), 6))
        spacing = _floats(None if measures is None else measures.get("PixelSpacing"), 2)
        split: dict[str, Any] = {}
        if content is not None:
            for key in ("TemporalPositionIndex", "StackID"):
                if key in content:
                    split[key] = _value(content, key)
            dims = content.get("DimensionIndexValues")
            if dims is not None:
                values = [int(v) for v in (dims if isinstance(dims, (list, tuple)) or hasattr(dims, "__iter__")
                                           else [dims])]
                split["DimensionIndex"] = tuple(v for i, v in enumerate(values) if i not in skip)
        if echo is not None and "EffectiveEchoTime" in echo:
            split["EchoTime"] = _value(echo, "EffectiveEchoTime")
        frames.append(Frame(
            path=path, display=f"{display} [frame {index + 1}]", dataset=ds, frame_index=index,
            rows=rows, columns=columns,
            position_lps=_floats(None if position is None else position.get("ImagePositionPatient"), 3),
            row_dir=None if orientation is None else orientation[0],
            col_dir=None if orientation is None else orientation[1],
            pixel_spacing_mm=None if spacing is None or np.any(spacing <= 0) else (float(spacing[0]),
                                                                                  float(spacing[1])),
            rescale_slope=float((transform or ds).get("RescaleSlope", 1) or 1),
            rescale_intercept=float((transform or ds).get("RescaleIntercept", 0) or 0),
            instance_number=index + 1,
            split_values=split,
        ))
    return frames


def read_header(path: Path) -> Any:
    """Parse a file's header, leaving pixel data on disk; raises :class:`FrameError` when not DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return pydicom.dcmread(path, defer_size=4096)
            except InvalidDicomError:
                # A dataset without the 128-byte preamble is still DICOM if it parses to image attributes.
                ds = pydicom.dcmread(path, defer_size=4096, force=True)
                if "SOPClassUID" not in ds or not ("Rows" in ds or "PixelData" in ds):
                    raise FrameError("not a DICOM file") from None
                return ds
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError(f"unreadable DICOM ({type(exc).__name__}: {str(exc)[:120]})") from None
