"""Decoding the stored pixels of one plane, every transfer syntax pydicom + pylibjpeg read."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.dicom.frames import NATIVE_TRANSFER_SYNTAXES, Frame, FrameError


def _native(ds: Any) -> NDArray[Any] | None:
    """Fast path for uncompressed little-endian monochrome data (most CT and MR)."""
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    bits = int(ds.get("BitsAllocated", 0) or 0)
    if syntax not in NATIVE_TRANSFER_SYNTAXES or bits not in (8, 16, 32) or "PixelData" not in ds:
        return None
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}").newbyteorder("<")
    rows, cols = int(ds.Rows), int(ds.Columns)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    raw = ds.PixelData
    needed = rows * cols * frames * dtype.itemsize
    if len(raw) < needed:
        raise FrameError(f"pixel data holds {len(raw)} bytes, {needed} expected")
    array = np.frombuffer(raw, dtype=dtype, count=rows * cols * frames).reshape(frames, rows, cols)
    stored = int(ds.get("BitsStored", bits) or bits)
    if stored < bits:
        # Only BitsStored bits are pixel value: mask the rest, sign-extending signed data.
        shift = bits - stored
        array = (array << shift) >> shift if signed else array & ((1 << stored) - 1)
    return array


def decode_dataset(ds: Any, display: str) -> NDArray[Any]:
    """All frames of a dataset as ``(frames, rows, cols)`` stored values (before rescale)."""
    try:
        array = _native(ds)
        if array is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                array = np.asarray(ds.pixel_array)
            if array.ndim == 2:
                array = array[np.newaxis]
    except FrameError as exc:
        raise FrameError(f"{display}: {exc}") from None
    except Exception as exc:
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", str(syntax))
        raise FrameError(f"{display}: cannot decode pixel data ({name}): {str(exc)[:160]}") from None
    if array.shape[-2:] != (int(ds.Rows), int(ds.Columns)):
        raise FrameError(f"{display}: decoded pixels have shape {array.shape}, header says "
                         f"{ds.Rows}x{ds.Columns}")
    return array


class PlaneDecoder:
    """Decodes planes, decoding each multi-frame file once."""

    def __init__(self) -> None:
        self._cache: dict[int, NDArray[Any]] = {}

    def __call__(self, frame: Frame) -> NDArray[Any]:
        ds = frame.dataset
        if frame.frame_index is None:
            return decode_dataset(ds, frame.display)[0]
        key = id(ds)
        if key not in self._cache:
            self._cache[key] = decode_dataset(ds, frame.display)
        return self._cache[key][frame.frame_index]
