"""Decoding stored pixels: native fast path, bit masking, compressed syntaxes, rescale, and decode errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import JPEG2000Lossless, RLELossless

from tests.workstation.dicom.synthetic import INTERCEPT, save, write_axial
from workstation.dicom.frames import FrameError
from workstation.dicom.load import load_candidate
from workstation.dicom.pixels import decode_dataset
from workstation.dicom.scan import scan_path
from workstation.errors import InputError


def one_slice(tmp_path: Path) -> pydicom.Dataset:
    series = write_axial(tmp_path / "one", n=1, rows=6, cols=5)
    return pydicom.dcmread(series.files[0])


def test_native_signed_pixels_decode_as_stored(tmp_path: Path) -> None:
    ds = one_slice(tmp_path)
    stored = np.arange(-15, 15, dtype=np.int16).reshape(6, 5)
    ds.PixelData = stored.tobytes()
    array = decode_dataset(ds, "x")
    assert array.shape == (1, 6, 5) and array.dtype == np.int16
    np.testing.assert_array_equal(array[0], stored)


def test_unsigned_pixels_keep_only_bits_stored(tmp_path: Path) -> None:
    ds = one_slice(tmp_path)
    ds.PixelRepresentation, ds.BitsStored, ds.HighBit = 0, 12, 11
    values = np.arange(30, dtype=np.uint16).reshape(6, 5) * 100
    ds.PixelData = (values | 0xF000).astype("<u2").tobytes()  # junk in the unused high bits
    np.testing.assert_array_equal(decode_dataset(ds, "x")[0], values)


def test_signed_pixels_with_fewer_bits_stored_are_sign_extended(tmp_path: Path) -> None:
    ds = one_slice(tmp_path)
    ds.BitsStored, ds.HighBit = 12, 11
    values = np.linspace(-2048, 2047, 30).astype(np.int16).reshape(6, 5)
    raw = (values.astype(np.uint16) & 0x0FFF) | 0xA000  # 12-bit two's complement plus junk above
    ds.PixelData = raw.astype("<u2").tobytes()
    np.testing.assert_array_equal(decode_dataset(ds, "x")[0], values)


def test_short_native_pixel_data_names_the_file(tmp_path: Path) -> None:
    ds = one_slice(tmp_path)
    ds.PixelData = bytes(20)
    with pytest.raises(FrameError, match=r"^slice-7\.dcm: pixel data holds 20 bytes, 60 expected"):
        decode_dataset(ds, "slice-7.dcm")


@pytest.mark.parametrize("syntax", [RLELossless, JPEG2000Lossless], ids=["rle", "jpeg2000"])
def test_compressed_series_loads_like_the_uncompressed_one(tmp_path: Path, syntax: pydicom.uid.UID) -> None:
    series = write_axial(tmp_path / "plain", n=5, rows=32, cols=40)  # openjpeg needs 32+ pixels a side
    packed = tmp_path / "packed"
    packed.mkdir()
    for path in series.files:
        ds = pydicom.dcmread(path)
        ds.compress(syntax, generate_instance_uid=False)
        save(ds, packed / path.name)
    [plain] = load_candidate(scan_path(tmp_path / "plain").default())
    [compressed] = load_candidate(scan_path(packed).default())
    assert compressed.provenance["source"]["transfer_syntaxes"] == [str(syntax)]
    np.testing.assert_array_equal(compressed.array, plain.array)
    np.testing.assert_allclose(compressed.ijk_to_lps, plain.ijk_to_lps)


def test_per_slice_rescale_is_applied_to_each_slice(tmp_path: Path) -> None:
    """Slices of one series may carry different intercepts; HU must not depend on them."""
    series = write_axial(tmp_path / "s", n=6, rows=16, cols=16)
    for truth in series.slices[::2]:
        ds = pydicom.dcmread(truth.path)
        stored = np.frombuffer(ds.PixelData, dtype="<i2").reshape(16, 16)
        ds.PixelData = (stored + 24).astype("<i2").tobytes()
        ds.RescaleIntercept = f"{INTERCEPT - 24:g}"
        save(ds, truth.path)
    [volume] = load_candidate(scan_path(tmp_path / "s").default())
    for k, truth in enumerate(series.slices):
        np.testing.assert_array_equal(volume.array[k], truth.hu)


def test_undecodable_compressed_pixels_name_the_file(tmp_path: Path) -> None:
    series = write_axial(tmp_path / "s", n=3, rows=16, cols=16)
    rng = np.random.default_rng(5)
    for path in series.files:
        ds = pydicom.dcmread(path)
        ds.file_meta.TransferSyntaxUID = JPEG2000Lossless
        ds.PixelData = encapsulate([rng.bytes(200)])
        ds["PixelData"].VR = "OB"
        save(ds, path)
    candidate = scan_path(tmp_path / "s").default()  # headers are fine: the scan cannot know
    with pytest.raises(InputError, match=r"IM000\d\.dcm: cannot decode pixel data \(JPEG 2000"):
        load_candidate(candidate)
