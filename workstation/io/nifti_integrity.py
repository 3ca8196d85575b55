"""Refuse truncated or corrupt NIfTI files before SimpleITK reads them.

ITK's NIfTI reader (SimpleITK 2.x) accepts a ``.nii`` or ``.nii.gz`` whose voxel data stops
short and fills the missing voxels with zeros, without an error: a half-copied CT or label map
would be imported as if it were whole. This module reads the header's dimensions, voxel type
and data offset, and checks that the file holds every voxel: its size, or for gzip its
decompressed stream (read once to the end, which also verifies its CRC). NRRD and MetaImage
readers already refuse short files.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

from workstation.errors import InputError

_CHUNK = 1 << 20
_NIFTI1_HEADER = 348
_NIFTI2_HEADER = 540


def _open(path: Path) -> tuple[BinaryIO, bool]:
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"
    # Returned open for the caller's ``with``.
    stream: BinaryIO = gzip.open(path, "rb") if compressed else open(path, "rb")  # type: ignore[assignment]  # noqa: SIM115
    return stream, compressed


def _expected_bytes(header: bytes, path: Path) -> int | None:
    """Bytes a single-file NIfTI must hold (data offset + voxel data), or None when not a single-file NIfTI."""
    if len(header) < 4:
        raise InputError(f"{path}: not a NIfTI file (only {len(header)} bytes)")
    for order in "<>":
        size = struct.unpack(order + "i", header[:4])[0]
        if size == _NIFTI1_HEADER and len(header) >= _NIFTI1_HEADER:
            if header[344:347] != b"n+1":  # "ni1": header and image in two files, not handled here
                return None
            dims = struct.unpack(order + "8h", header[40:56])
            bitpix = struct.unpack(order + "h", header[72:74])[0]
            vox_offset = struct.unpack(order + "f", header[108:112])[0]
            if not math.isfinite(vox_offset):  # a damaged header: SimpleITK reports it
                return None
            offset = max(int(vox_offset), _NIFTI1_HEADER + 4)
            break
        if size == _NIFTI2_HEADER and len(header) >= _NIFTI2_HEADER:
            if header[4:7] != b"n+2":
                return None
            bitpix = struct.unpack(order + "h", header[14:16])[0]
            dims = struct.unpack(order + "8q", header[16:80])
            offset = max(int(struct.unpack(order + "q", header[168:176])[0]), _NIFTI2_HEADER + 4)
            break
    else:
        return None  # not a NIfTI header this check understands; SimpleITK gives its own error
    # The NIfTI magic is there: a header it cannot describe is refused here, in one line, before the
    # NIfTI C library prints its own report on the terminal.
    n_dims = int(dims[0])
    if not 1 <= n_dims <= 7:
        raise InputError(f"{path}: damaged NIfTI header (dim[0] = {n_dims}, expected 1..7)")
    if any(int(d) < 1 for d in dims[1:n_dims + 1]):
        raise InputError(f"{path}: damaged NIfTI header (dimensions {list(dims[1:n_dims + 1])})")
    if bitpix <= 0 or bitpix % 8:
        raise InputError(f"{path}: damaged NIfTI header (bitpix = {bitpix})")
    voxels = 1
    for d in dims[1:n_dims + 1]:
        voxels *= max(int(d), 1)
    return offset + voxels * bitpix // 8


def check_nifti_complete(path: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` naming ``path`` when a NIfTI file is truncated or its gzip stream corrupt.

    Files that are not single-file NIfTI (or whose header this check does not understand) pass
    unchanged; SimpleITK then reports its own error.
    """
    path = Path(path)
    if not path.name.lower().endswith((".nii", ".nii.gz")) or not path.is_file():
        return
    try:
        stream, compressed = _open(path)
        with stream as f:
            header = f.read(_NIFTI2_HEADER)
            expected = _expected_bytes(header, path)
            if not compressed:
                if expected is None:
                    return
                total = path.stat().st_size
            else:
                # A gzip stream is read to its end, so that its CRC is checked even where the header is not
                # understood (its trailer's size field alone would miss corrupt data).
                total = len(header)
                while chunk := f.read(_CHUNK):
                    total += len(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"{path}: corrupt or truncated gzip data ({exc})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if expected is not None and total < expected:
        unpacked = " once decompressed" if compressed else ""
        raise InputError(f"{path}: truncated: its header needs {expected} bytes, the file holds {total}{unpacked}")
