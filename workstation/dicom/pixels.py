"""Decoding the stored pixels of one plane, every transfer syntax pydicom + pylibjpeg read.

Uncompressed little-endian pixel data (most CT and MR) is read straight from the file at the
offset the header scan recorded, into the caller's array: no second parse of the element, no
intermediate ``bytes`` copy, and the datasets do not keep every file's pixels in memory.
Everything else (compressed, big-endian, deflated, float pixel data) goes through pydicom's
``pixel_array``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.dicom.frames import NATIVE_TRANSFER_SYNTAXES, Frame, FrameError, header_number

_PIXEL_DATA = 0x7FE00010
_PIXEL_DATA_LE = b"\xe0\x7f\x10\x00"  # (7FE0,0010) as little-endian group, element
_UNDEFINED_LENGTH = 0xFFFFFFFF
_ELEMENT_HEADER = 12  # explicit VR OB/OW: tag, VR, 2 reserved, 4-byte length; implicit VR: tag, length


@dataclass(frozen=True)
class NativeLayout:
    """Where and how the stored values of a native (uncompressed little-endian) dataset lie.

    Attributes
    ----------
    dtype : little-endian integer type of the stored values (``BitsAllocated`` 8, 16 or 32).
    frames, rows, columns : the pixel data is ``frames`` planes of ``rows`` x ``columns``.
    bits_stored : ``BitsStored``; the bits above it are masked off (sign-extended when signed).
    signed : ``PixelRepresentation`` is 1.
    filename : the file holding the pixel data, when it was left there (deferred).
    offset : position of the first pixel value in that file.
    length : the element's value length there.
    implicit_vr : the element is encoded with implicit VR (tag and length, no VR).
    data : the pixel data bytes, when they were read with the header instead.
    """

    dtype: np.dtype[Any]
    frames: int
    rows: int
    columns: int
    bits_stored: int
    signed: bool
    filename: str | None
    offset: int
    length: int
    implicit_vr: bool
    data: bytes | None = field(repr=False)

    @property
    def plane_bytes(self) -> int:
        return self.rows * self.columns * self.dtype.itemsize

    @property
    def masked(self) -> bool:
        """Whether bits above ``BitsStored`` must be cleared (or sign-extended)."""
        return self.bits_stored < 8 * self.dtype.itemsize

    def value_range(self) -> tuple[int, int]:
        """Smallest and largest value a stored pixel can hold after masking."""
        if self.signed:
            return -(1 << (self.bits_stored - 1)), (1 << (self.bits_stored - 1)) - 1
        return 0, (1 << self.bits_stored) - 1


def native_layout(ds: Any) -> NativeLayout | None:
    """The layout of ``ds``'s pixel data when it is native little-endian, else None.

    Raises :class:`FrameError` when the pixel data is shorter than Rows x Columns x frames.
    """
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", ""))
    bits = int(header_number(ds, 0x00280100, "BitsAllocated", "US", 0))
    if syntax not in NATIVE_TRANSFER_SYNTAXES or bits not in (8, 16, 32):
        return None
    elem = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    if elem is None:
        return None
    signed = int(header_number(ds, 0x00280103, "PixelRepresentation", "US", 0)) == 1
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}").newbyteorder("<")
    rows = int(header_number(ds, 0x00280010, "Rows", "US", 0))
    cols = int(header_number(ds, 0x00280011, "Columns", "US", 0))
    frames = int(header_number(ds, 0x00280008, "NumberOfFrames", "IS", 1))
    if rows < 1 or cols < 1:
        return None
    # BitsStored above BitsAllocated (invalid): nothing to mask.
    stored = min(int(header_number(ds, 0x00280101, "BitsStored", "US", bits)), bits)
    needed = rows * cols * frames * dtype.itemsize
    value = elem.value
    if value is None:  # deferred: left in the file
        tell, length = getattr(elem, "value_tell", None), getattr(elem, "length", None)
        filename = getattr(ds, "filename", None)
        if tell is None or length is None or length == _UNDEFINED_LENGTH or not isinstance(filename, str):
            return None
        if length < needed:
            raise FrameError(f"pixel data holds {length} bytes, {needed} expected")
        return NativeLayout(dtype, frames, rows, cols, stored, signed, filename, int(tell), int(length),
                            bool(getattr(elem, "is_implicit_VR", False)), None)
    if not isinstance(value, bytes | bytearray):
        return None
    if len(value) < needed:
        raise FrameError(f"pixel data holds {len(value)} bytes, {needed} expected")
    return NativeLayout(dtype, frames, rows, cols, stored, signed, None, 0, len(value), False, bytes(value))


def _mask(plane: NDArray[Any], layout: NativeLayout) -> None:
    """Keep only ``BitsStored`` bits of ``plane`` in place, sign-extending signed data."""
    if not layout.masked:
        return
    if layout.signed:
        shift = 8 * layout.dtype.itemsize - layout.bits_stored
        np.left_shift(plane, shift, out=plane)
        np.right_shift(plane, shift, out=plane)  # arithmetic shift: sign extension
    else:
        np.bitwise_and(plane, (1 << layout.bits_stored) - 1, out=plane)


def _header_matches(head: bytes, layout: NativeLayout) -> bool:
    """Whether ``head``, the bytes before the value, end with the PixelData tag (and VR) and length.

    This is what pydicom checks before a deferred read: that the file still holds the element
    where the header scan found it.
    """
    if len(head) != _ELEMENT_HEADER:
        return False
    length = int.from_bytes(head[8:], "little")
    if layout.implicit_vr:
        return head[4:8] == _PIXEL_DATA_LE and length == layout.length
    return head[:4] == _PIXEL_DATA_LE and head[6:8] == b"\0\0" and length == layout.length


def read_native_plane(layout: NativeLayout, index: int, out: NDArray[Any], display: str) -> None:
    """Fill ``out`` with the stored values (masked to ``BitsStored``) of plane ``index``.

    Parameters
    ----------
    layout : from :func:`native_layout`.
    index : frame number (0 for a single-frame file).
    out : C-contiguous ``(rows, columns)`` array whose item size is the layout's; its bytes are
        the little-endian stored values afterwards, masked in ``layout.dtype``.
    display : how the file is named in error messages.

    Raises
    ------
    FrameError
        Naming ``display``, when the file cannot be read or ends before the plane does.
    """
    if not out.flags.c_contiguous or out.shape != (layout.rows, layout.columns):
        raise ValueError(f"read_native_plane needs a C-contiguous {layout.rows}x{layout.columns} array")
    target = out.view(layout.dtype)
    start = index * layout.plane_bytes
    if layout.data is not None:
        target[...] = np.frombuffer(layout.data, dtype=layout.dtype, count=layout.rows * layout.columns,
                                    offset=start).reshape(layout.rows, layout.columns)
    else:
        assert layout.filename is not None
        buffer = memoryview(target.reshape(-1)).cast("B")
        got = 0
        try:
            with open(layout.filename, "rb", buffering=0) as f:
                if index == 0 and layout.offset >= _ELEMENT_HEADER:
                    f.seek(layout.offset - _ELEMENT_HEADER)
                    if not _header_matches(f.read(_ELEMENT_HEADER), layout):
                        raise FrameError(f"{display}: the file changed since it was scanned (pixel data "
                                         "no longer where its header put it)")
                else:
                    f.seek(layout.offset + start)
                while got < len(buffer):
                    n = f.readinto(buffer[got:])
                    if not n:
                        break
                    got += n
        except OSError as exc:
            raise FrameError(f"{display}: cannot read pixel data ({exc.strerror or exc})") from None
        if got < len(buffer):
            total = layout.frames * layout.plane_bytes
            raise FrameError(f"{display}: pixel data holds {start + got} bytes, {total} expected")
    _mask(target, layout)


def _decode_error(ds: Any, display: str, exc: Exception) -> FrameError:
    """The error for pixel data pydicom could not decode, naming the file and its transfer syntax."""
    syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    name = getattr(syntax, "name", str(syntax))
    reason = " ".join(str(exc).split())  # decoders join their plugins' errors with newlines
    return FrameError(f"{display}: cannot decode pixel data ({name}): {reason[:200]}")


def _layout_of(ds: Any, display: str) -> NativeLayout | None:
    """:func:`native_layout` with errors naming the file."""
    try:
        return native_layout(ds)
    except FrameError as exc:
        raise FrameError(f"{display}: {exc}") from None
    except Exception as exc:
        raise _decode_error(ds, display, exc) from None


def decode_dataset(ds: Any, display: str) -> NDArray[Any]:
    """All frames of a dataset as ``(frames, rows, cols)`` stored values (before rescale).

    Raises :class:`FrameError` naming ``display`` when the pixels cannot be read or decoded.
    """
    layout = _layout_of(ds, display)
    if layout is not None:
        array = np.empty((layout.frames, layout.rows, layout.columns), dtype=layout.dtype)
        for index in range(layout.frames):
            read_native_plane(layout, index, array[index], display)
        return array
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            array = np.asarray(ds.pixel_array)
        if array.ndim == 2:
            array = array[np.newaxis]
    except Exception as exc:
        raise _decode_error(ds, display, exc) from None
    if array.shape[-2:] != (int(ds.Rows), int(ds.Columns)):
        raise FrameError(f"{display}: decoded pixels have shape {array.shape}, header says "
                         f"{ds.Rows}x{ds.Columns}")
    return array


class PlaneDecoder:
    """Decodes planes: native ones straight from their file, others decoding each file once."""

    def __init__(self) -> None:
        self._cache: dict[int, NDArray[Any]] = {}
        self._layouts: dict[int, NativeLayout | None] = {}

    def layout(self, frame: Frame) -> NativeLayout | None:
        """The native layout of the frame's dataset (None when pydicom must decode it).

        Raises :class:`FrameError` naming the file when its pixel data is too short.
        """
        key = id(frame.dataset)
        if key not in self._layouts:
            self._layouts[key] = _layout_of(frame.dataset, frame.display)
        return self._layouts[key]

    def read_into(self, frame: Frame, out: NDArray[Any]) -> None:
        """Read a native frame's stored values into ``out`` (see :func:`read_native_plane`)."""
        layout = self.layout(frame)
        assert layout is not None
        read_native_plane(layout, frame.frame_index or 0, out, frame.display)

    def __call__(self, frame: Frame) -> NDArray[Any]:
        """The frame's stored values as a ``(rows, cols)`` array."""
        layout = self.layout(frame)
        if layout is not None:
            plane = np.empty((layout.rows, layout.columns), dtype=layout.dtype)
            read_native_plane(layout, frame.frame_index or 0, plane, frame.display)
            return plane
        ds = frame.dataset
        if frame.frame_index is None:
            return decode_dataset(ds, frame.display)[0]
        key = id(ds)
        if key not in self._cache:
            self._cache[key] = decode_dataset(ds, frame.display)
        return self._cache[key][frame.frame_index]
