"""One 2-D image of a DICOM file (a classic slice or one frame of an enhanced multi-frame file)."""

from __future__ import annotations

import math
import struct
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

# Tags (group << 16 | element) read for every plane; ints skip pydicom's keyword lookup.
_PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # PixelData, FloatPixelData, DoubleFloatPixelData
_PER_FRAME_GROUPS = 0x52009230
_ROWS, _COLUMNS, _SAMPLES_PER_PIXEL, _NUMBER_OF_FRAMES = 0x00280010, 0x00280011, 0x00280002, 0x00280008
_IMAGE_POSITION, _IMAGE_ORIENTATION, _PIXEL_SPACING = 0x00200032, 0x00200037, 0x00280030
_RESCALE_SLOPE, _RESCALE_INTERCEPT, _INSTANCE_NUMBER = 0x00281053, 0x00281052, 0x00200013
# Tag and dictionary VR of each of CLASSIC_SPLIT_ATTRIBUTES.
_SPLIT_TAGS = {
    "TemporalPositionIdentifier": (0x00200100, "IS"),
    "TriggerTime": (0x00181060, "DS"),
    "EchoNumbers": (0x00180086, "IS"),
    "EchoTime": (0x00180081, "DS"),
    "DiffusionBValue": (0x00189087, "FD"),
    "AcquisitionNumber": (0x00200012, "IS"),
    "ImageType": (0x00080008, "CS"),
}


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


_UNPARSED = object()  # the fast path does not apply: ask pydicom


def _raw_bytes(ds: Any, tag: int, vr: str) -> Any:
    """The still-unconverted value bytes of element ``tag``; None when absent, else ``_UNPARSED``.

    Only raw elements (never accessed since they were read) whose VR is ``vr`` (explicit VR)
    or unknown (implicit VR: the dictionary VR is ``vr``) qualify.
    """
    elem = ds.get_item(tag, keep_deferred=True)
    if elem is None:
        return None
    # pydicom's RawDataElement is a named tuple; a converted DataElement is not.
    if not isinstance(elem, tuple) or elem.value is None or elem.VR not in (vr, None):
        return _UNPARSED
    return elem


def _fast_numbers(ds: Any, tag: int, vr: str) -> Any:
    """Values of a DS, IS or US element parsed straight from its raw bytes.

    Parameters
    ----------
    ds : pydicom dataset.
    tag : the element's tag.
    vr : its dictionary VR, ``"DS"``, ``"IS"`` or ``"US"``.

    Returns
    -------
    list of float (DS) or int (IS, US), empty for an empty value; None when the element is
    absent; ``_UNPARSED`` when the element was already converted or its bytes are anything but
    plain numbers, so the caller uses pydicom's value (what it would have done anyway).
    Converting a handful of numbers this way costs a few microseconds instead of pydicom's
    tens, for every one of hundreds of files.
    """
    elem = _raw_bytes(ds, tag, vr)
    if elem is None or elem is _UNPARSED:
        return elem
    value = elem.value
    try:
        if vr == "US":
            if len(value) % 2:
                return _UNPARSED
            return list(struct.unpack(f"{'<' if elem.is_little_endian else '>'}{len(value) // 2}H", value))
        text = value.decode("latin-1").rstrip(" \x00")
        if not text:
            return []
        parts = text.split("\\")
        return [int(p) for p in parts] if vr == "IS" else [float(p) for p in parts]
    except (ValueError, UnicodeDecodeError, struct.error):
        return _UNPARSED


def header_number(ds: Any, tag: int, keyword: str, vr: str, default: float) -> Any:
    """``ds.get(keyword, default) or default``, from the raw bytes when they are one plain number.

    Parameters
    ----------
    ds : pydicom dataset.
    tag : the element's tag, ``group << 16 | element``.
    keyword : its keyword (used when pydicom converts the value).
    vr : its dictionary VR: ``"DS"``, ``"IS"`` or ``"US"``.
    default : returned when the element is absent, empty or zero.
    """
    numbers = _fast_numbers(ds, tag, vr)
    if numbers is None or (isinstance(numbers, list) and not numbers):
        return default
    if numbers is _UNPARSED or len(numbers) != 1:
        return ds.get(keyword, default) or default
    return numbers[0] or default


def _vector(ds: Any, tag: int, keyword: str, n: int) -> NDArray[np.float64] | None:
    """``_floats(ds.get(keyword), n)``, from the raw bytes when they are plain numbers."""
    numbers = _fast_numbers(ds, tag, "DS")
    if numbers is _UNPARSED:
        return _floats(ds.get(keyword), n)
    if numbers is None or len(numbers) != n or not all(map(math.isfinite, numbers)):
        return None
    return np.array(numbers, dtype=float)


def _split_value(ds: Any, keyword: str) -> Any:
    """``_value(ds, keyword)`` for a classic split attribute, from the raw bytes when simple.

    Single IS/DS numbers become floats; CS values are split as pydicom splits them (its
    ``multi_string`` on the ISO 8859-1 text). Anything else goes through pydicom.
    """
    tag, vr = _SPLIT_TAGS[keyword]
    if vr in ("IS", "DS"):
        numbers = _fast_numbers(ds, tag, vr)
        if isinstance(numbers, list) and len(numbers) <= 1:
            return float(numbers[0]) if numbers else None
    elif vr == "CS":
        elem = _raw_bytes(ds, tag, vr)
        if elem is not None and elem is not _UNPARSED:
            items = elem.value.decode("latin-1").rstrip(" \x00").split("\\")
            if len(items) > 1:
                return tuple(items)
            if not items[0]:
                return None
            try:
                return float(items[0])
            except ValueError:
                return items[0]
    return _value(ds, keyword)


def frames_of(dataset: Any, path: Path, display: str) -> list[Frame]:
    """The image planes a dataset holds; raises :class:`FrameError` with the reason when none.

    Parameters
    ----------
    dataset : pydicom dataset as :func:`read_header` returns it.
    path : the file it was read from.
    display : how the file is named in messages.

    Returns
    -------
    One :class:`Frame` for a classic image, one per frame for an enhanced multi-frame image.
    """
    if not any(tag in dataset for tag in _PIXEL_DATA_TAGS):
        sop = str(dataset.get("SOPClassUID", "")) or "unknown SOP class"
        raise FrameError(f"no pixel data ({sop})")
    rows = int(header_number(dataset, _ROWS, "Rows", "US", 0))
    columns = int(header_number(dataset, _COLUMNS, "Columns", "US", 0))
    if rows < 1 or columns < 1:
        raise FrameError("no Rows/Columns")
    if int(header_number(dataset, _SAMPLES_PER_PIXEL, "SamplesPerPixel", "US", 1)) != 1:
        raise FrameError(f"colour image (SamplesPerPixel={dataset.SamplesPerPixel}): not a scalar volume")
    n_frames = int(header_number(dataset, _NUMBER_OF_FRAMES, "NumberOfFrames", "IS", 1))
    if _PER_FRAME_GROUPS in dataset:
        return _enhanced_frames(dataset, path, display, rows, columns, n_frames)
    if n_frames > 1:
        raise FrameError(f"{n_frames} frames without per-frame geometry (functional groups)")
    orientation = _orientation(_vector(dataset, _IMAGE_ORIENTATION, "ImageOrientationPatient", 6))
    spacing = _vector(dataset, _PIXEL_SPACING, "PixelSpacing", 2)
    split = {k: _split_value(dataset, k) for k in CLASSIC_SPLIT_ATTRIBUTES if _SPLIT_TAGS[k][0] in dataset}
    return [Frame(
        path=path, display=display, dataset=dataset, frame_index=None, rows=rows, columns=columns,
        position_lps=_vector(dataset, _IMAGE_POSITION, "ImagePositionPatient", 3),
        row_dir=None if orientation is None else orientation[0],
        col_dir=None if orientation is None else orientation[1],
        pixel_spacing_mm=None if spacing is None or np.any(spacing <= 0) else (float(spacing[0]), float(spacing[1])),
        rescale_slope=float(header_number(dataset, _RESCALE_SLOPE, "RescaleSlope", "DS", 1)),
        rescale_intercept=float(header_number(dataset, _RESCALE_INTERCEPT, "RescaleIntercept", "DS", 0)),
        instance_number=int(header_number(dataset, _INSTANCE_NUMBER, "InstanceNumber", "IS", 0)),
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


def read_header(path: Path, *, defer_size: int | None = 4096) -> Any:
    """Parse a file's header, leaving pixel data on disk; raises :class:`FrameError` when not DICOM.

    Values larger than ``defer_size`` bytes are read from the file only when used; ``None`` reads
    everything now (for files that will not outlive the scan, such as a zip's extracted members).
    """
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ds = pydicom.dcmread(path, defer_size=defer_size)
            except InvalidDicomError:
                # A dataset without the 128-byte preamble is still DICOM if it parses to image attributes.
                ds = pydicom.dcmread(path, defer_size=defer_size, force=True)
                if "SOPClassUID" not in ds or not ("Rows" in ds or "PixelData" in ds):
                    raise FrameError("not a DICOM file") from None
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError(f"unreadable DICOM ({type(exc).__name__}: {str(exc)[:120]})") from None
    # pydicom drops an undefined-length element (encapsulated pixel data, a sequence) cut off by the
    # end of the file with only a warning: without this the file would look like it has no pixel data.
    if any("End of file reached before delimiter" in str(w.message) for w in caught):
        raise FrameError("truncated file: it ends inside its encapsulated pixel data or a sequence")
    return ds
