"""Benchmark: DICOM series import into an in-memory volume, against SimpleITK's ImageSeriesReader.

Writes a synthetic CT series (int16, explicit VR little endian, one file per slice, realistic
headers with RescaleIntercept -1024, anatomy-like content) into a temporary folder, then times,
alternating in one process after a warm-up, the median of several runs of

* ours: ``scan_path`` + ``load_candidate`` (header scan, validation, decoding, rescale);
* SimpleITK: ``GetGDCMSeriesFileNames`` + ``ImageSeriesReader.Execute`` + ``GetArrayFromImage``.

Both answers are checked against each other (voxel values after matching axis directions,
spacing, origin) and against the phantom that was written. Informational lines time writing a
case bundle of the volume (``save_case``) and the full de-identifying import (``import_path``).

Run from the project root::

    .venv/bin/python benchmarks/bench_import.py [--slices 300] [--size 512] [--runs 5]

The last line has the form collected by the benchmark scripts (see DESIGN.md, "Benchmarks")::

    BENCH name=import_512x512x300 ours_s=... peer=SimpleITK peer_s=... ratio=... check=...
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
INTERCEPT = -1024


def phantom_slice(k: int, n_slices: int, size: int, rng: np.random.Generator) -> NDArray[np.int16]:
    """Hounsfield units of axial slice ``k`` (0 = most inferior) of an abdomen/chest-like phantom.

    Air around a body ellipse with a fat rim, soft tissue, liver and kidneys low, lungs high,
    a spine with cortical bone, contrast-filled aorta, Gaussian noise, and the scanner's
    padding value (-3024 HU) outside the circular field of view.
    """
    t = k / max(n_slices - 1, 1)
    s = size / 512.0
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    cy, cx = 270 * s, 256 * s

    def ellipse(y0: float, x0: float, ry: float, rx: float) -> NDArray[np.bool_]:
        return ((yy - y0) / ry) ** 2 + ((xx - x0) / rx) ** 2 <= 1.0

    hu = np.full((size, size), -1000.0, dtype=np.float32)
    breathe = 1.0 + 0.05 * np.sin(6.0 * t)
    body_ry, body_rx = 150 * s * breathe, 205 * s * breathe
    hu[ellipse(cy, cx, body_ry, body_rx)] = -100.0  # subcutaneous fat
    hu[ellipse(cy, cx, body_ry - 15 * s, body_rx - 15 * s)] = 40.0  # soft tissue
    if t > 0.55:  # chest: lungs
        r = 60 * s * min(1.0, (t - 0.55) * 6)
        hu[ellipse(cy - 10 * s, cx - 85 * s, 1.3 * r, r)] = -850.0
        hu[ellipse(cy - 10 * s, cx + 85 * s, 1.3 * r, r)] = -850.0
    elif t > 0.25:  # upper abdomen: liver and kidneys
        hu[ellipse(cy - 20 * s, cx - 70 * s, 80 * s, 95 * s)] = 60.0
        hu[ellipse(cy + 60 * s, cx - 80 * s, 30 * s, 22 * s)] = 30.0
        hu[ellipse(cy + 60 * s, cx + 80 * s, 30 * s, 22 * s)] = 30.0
    hu[ellipse(cy + 55 * s, cx - 25 * s, 14 * s, 14 * s)] = 250.0  # aorta (contrast)
    hu[ellipse(cy + 95 * s, cx, 30 * s, 30 * s)] = 700.0  # vertebral body cortex
    hu[ellipse(cy + 95 * s, cx, 24 * s, 24 * s)] = 250.0  # cancellous bone
    hu += rng.normal(0.0, 15.0, size=hu.shape).astype(np.float32)
    hu[((yy - size / 2) ** 2 + (xx - size / 2) ** 2) > (size / 2) ** 2] = -3024.0
    return np.clip(np.rint(hu), -3024, 3071).astype(np.int16)


def write_series(folder: Path, n_slices: int, size: int, seed: int = 7) -> NDArray[np.int16]:
    """Write the phantom as one CT file per slice into ``folder``; returns the HU array [k, j, i].

    ``k`` increases towards the head (+z, LPS). Files are numbered from the head down, as a
    head-first helical scan numbers them, so file order is the reverse of ``k``.
    """
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import generate_uid

    rng = np.random.default_rng(seed)
    study, series, frame_of_ref = generate_uid(), generate_uid(), generate_uid()
    spacing, thickness = 0.78125 * 512 / size, 1.25
    origin_x = origin_y = -spacing * (size - 1) / 2
    z0 = -400.0
    truth = np.empty((n_slices, size, size), dtype=np.int16)
    for k in range(n_slices):
        hu = phantom_slice(k, n_slices, size, rng)
        truth[k] = hu
        instance = n_slices - k
        z = z0 + k * thickness
        sop = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
        meta.MediaStorageSOPInstanceUID = sop
        meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
        meta.ImplementationClassUID = "1.2.826.0.1.3680043.8.498.1"
        meta.ImplementationVersionName = "BENCH_1"
        ds = Dataset()
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.SOPClassUID = CT_IMAGE_STORAGE
        ds.SOPInstanceUID = sop
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240115"
        ds.StudyTime = ds.SeriesTime = "101500"
        ds.AcquisitionTime = ds.ContentTime = f"1016{k % 60:02d}.{k:06d}"
        ds.AccessionNumber = "A123456"
        ds.Modality = "CT"
        ds.Manufacturer = "BenchVendor"
        ds.InstitutionName = "General Hospital"
        ds.ReferringPhysicianName = "Doe^Referrer"
        ds.StationName = "CT01"
        ds.StudyDescription = "CT ABDOMEN PELVIS WITH CONTRAST"
        ds.SeriesDescription = "Abdomen 1.25mm"
        ds.ManufacturerModelName = "Model X"
        ds.PatientName = "Bench^Patient"
        ds.PatientID = "123456"
        ds.PatientBirthDate = "19600101"
        ds.PatientSex = "O"
        ds.PatientAge = "064Y"
        ds.BodyPartExamined = "ABDOMEN"
        ds.ScanOptions = "HELICAL MODE"
        ds.SliceThickness = f"{thickness}"
        ds.KVP = "120"
        ds.DataCollectionDiameter = "500"
        ds.SoftwareVersions = "1.0"
        ds.ReconstructionDiameter = f"{spacing * size:.3f}"
        ds.GantryDetectorTilt = "0"
        ds.TableHeight = "160"
        ds.RotationDirection = "CW"
        ds.ExposureTime = "500"
        ds.XRayTubeCurrent = "250"
        ds.Exposure = "125"
        ds.ConvolutionKernel = "STANDARD"
        ds.PatientPosition = "HFS"
        ds.StudyInstanceUID = study
        ds.SeriesInstanceUID = series
        ds.StudyID = "1"
        ds.SeriesNumber = 3
        ds.AcquisitionNumber = 1
        ds.InstanceNumber = instance
        ds.ImagePositionPatient = [f"{origin_x:.5f}", f"{origin_y:.5f}", f"{z:.3f}"]
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.FrameOfReferenceUID = frame_of_ref
        ds.PositionReferenceIndicator = ""
        ds.SliceLocation = f"{z:.3f}"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = size
        ds.PixelSpacing = [f"{spacing:.6g}", f"{spacing:.6g}"]
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.PixelPaddingValue = -2000
        ds.WindowCenter = "40"
        ds.WindowWidth = "400"
        ds.RescaleIntercept = str(INTERCEPT)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
        block = ds.private_block(0x0029, "BENCH VENDOR PRIVATE", create=True)
        block.add_new(0x10, "LO", "reconstruction 1")
        block.add_new(0x11, "DS", "0.5")
        block.add_new(0x12, "OB", bytes(range(256)) * 8)
        stored = np.maximum(hu.astype(np.int32) - INTERCEPT, -2000).astype("<i2")
        ds.PixelData = stored.tobytes()
        ds["PixelData"].VR = "OW"
        # Keep the phantom's padding (below -3024 + 1024 = -2000 stored) out of the comparison.
        truth[k] = stored.astype(np.int32) + INTERCEPT
        pydicom.dcmwrite(folder / f"IM{instance:05d}.dcm", ds, enforce_file_format=True)
    return truth


def ours(folder: Path) -> Any:
    """Our import into an in-memory :class:`Volume` (scan, validation, load)."""
    from workstation.dicom.load import load_candidate
    from workstation.dicom.scan import scan_path

    scan = scan_path(folder)
    volumes = load_candidate(scan.default())
    return volumes[0]


def peer(folder: Path) -> tuple[NDArray[Any], Any]:
    """SimpleITK's series reader: file listing and sorting by GDCM, read, array copy."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(names)
    image = reader.Execute()
    return sitk.GetArrayFromImage(image), image


def compare(volume: Any, peer_result: tuple[NDArray[Any], Any], truth: NDArray[np.int16]) -> str:
    """``check=`` text: voxel, spacing and origin agreement after matching axis directions."""
    from workstation.io.volume_files import sitk_affine

    peer_array, image = peer_result
    ours_affine = np.asarray(volume.ijk_to_lps, dtype=float)
    peer_affine = sitk_affine(image)
    array = np.asarray(peer_array)
    # Flip the peer's axes that point the other way (i, j, k <-> array axes 2, 1, 0).
    for axis in range(3):
        if float(ours_affine[:3, axis] @ peer_affine[:3, axis]) < 0:
            n = array.shape[2 - axis]
            peer_affine[:3, 3] += peer_affine[:3, axis] * (n - 1)
            peer_affine[:3, axis] *= -1
            array = np.flip(array, axis=2 - axis)
    if array.shape != volume.array.shape:
        return f"shape_mismatch ours={volume.array.shape} peer={array.shape}"
    max_diff = int(np.max(np.abs(volume.array.astype(np.int64) - array.astype(np.int64))))
    truth_diff = int(np.max(np.abs(volume.array.astype(np.int64) - truth.astype(np.int64))))
    spacing_diff = float(np.max(np.abs(np.linalg.norm(ours_affine[:3, :3], axis=0)
                                       - np.linalg.norm(peer_affine[:3, :3], axis=0))))
    origin_diff = float(np.max(np.abs(ours_affine[:3, 3] - peer_affine[:3, 3])))
    direction_diff = float(np.max(np.abs(ours_affine[:3, :3] - peer_affine[:3, :3])))
    return (f"max_diff={max_diff} spacing_diff={spacing_diff:.3g} origin_diff={origin_diff:.3g} "
            f"direction_diff={direction_diff:.3g} truth_diff={truth_diff} dtype={volume.array.dtype}/"
            f"{peer_array.dtype}")


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call and its result (garbage collected beforehand)."""
    gc.collect()
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each import (median reported)")
    parser.add_argument("--info-runs", type=int, default=3, help="timed runs of the informational steps")
    parser.add_argument("--data", type=Path, help="folder for the series (kept; reused when it holds files)")
    args = parser.parse_args()

    from workstation.bundle import save_case
    from workstation.importer import import_path
    from workstation.model.case import Case

    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        folder = args.data or tmp / "series"
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        truth_file = folder.parent / f".{folder.name}-truth.npy"
        if args.data and truth_file.is_file() and any(folder.glob("*.dcm")):
            truth = np.load(truth_file)
            print(f"reusing {folder}: {len(list(folder.glob('*.dcm')))} files")
        else:
            truth = write_series(folder, args.slices, args.size)
            if args.data:
                np.save(truth_file, truth)
            print(f"wrote {args.slices} files of {args.size}x{args.size} int16 in {time.perf_counter() - start:.1f} s")
        name = f"import_{truth.shape[2]}x{truth.shape[1]}x{truth.shape[0]}"

        # Warm-up (file cache, imports, lazy initialisations) and the correctness check.
        volume = ours(folder)
        check = compare(volume, peer(folder), truth)
        ours_times: list[float] = []
        peer_times: list[float] = []
        for run in range(args.runs):
            order = [(ours_times, ours), (peer_times, peer)]
            for times, function in order if run % 2 == 0 else order[::-1]:
                seconds, result = timed(lambda f=function: f(folder))
                times.append(seconds)
                del result
        ours_s, peer_s = statistics.median(ours_times), statistics.median(peer_times)
        print(f"runs ours: {' '.join(f'{t:.3f}' for t in ours_times)}")
        print(f"runs peer: {' '.join(f'{t:.3f}' for t in peer_times)}")

        case = Case(name="bench")
        case.add_volume(volume)
        bundle_times = []
        for run in range(args.info_runs):
            target = tmp / f"case-{run}"
            seconds, _ = timed(lambda t=target: save_case(case, t))
            bundle_times.append(seconds)
            size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
            shutil.rmtree(target)
        deid_times = []
        for _ in range(args.info_runs):
            seconds, result = timed(lambda: import_path(folder))
            deid_times.append(seconds)
            del result
        print(f"INFO name=bundle_write seconds={statistics.median(bundle_times):.3f} bytes={size} "
              f"(save_case of a case holding the volume, median of {args.info_runs})")
        print(f"INFO name=import_deidentified seconds={statistics.median(deid_times):.3f} "
              f"(workstation.importer.import_path, median of {args.info_runs})")
        print(f"BENCH name={name} ours_s={ours_s:.3f} peer=SimpleITK peer_s={peer_s:.3f} "
              f"ratio={peer_s / ours_s:.3f} check={check}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
