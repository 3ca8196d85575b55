"""Writers of small synthetic DICOM series with known geometry and known pixel values.

Every series is written as real DICOM files with pydicom (CT Image Storage, explicit VR
little endian by default) and returned with its truth: the LPS position of every pixel and
the Hounsfield value stored there. Values usually follow :func:`linear_field`, which linear
interpolation reproduces exactly, so a loaded volume can be checked voxel by voxel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

# Identifying values written into every synthetic file (must never reach a de-identified case).
PHI = {
    "PatientName": "Zebulon^Quixotic-Testpatient",
    "PatientID": "PID-7731-9921-QX",
    "PatientBirthDate": "19610203",
    "InstitutionName": "Hospital of Saint Quirinus Synthetic",
    "ReferringPhysicianName": "Dr^Referring-Physician-Xyzzy",
    "AccessionNumber": "ACC-55512345",
}
STUDY_DATE = "20240115"
INTERCEPT = -1024.0

Field = Callable[[NDArray[np.float64]], NDArray[np.float64]]


def linear_field(points_lps: ArrayLike) -> NDArray[np.float64]:
    """HU of a linear field at LPS points ``(..., 3)`` in mm (not rounded; about 7.6 HU per mm)."""
    p = np.asarray(points_lps, dtype=float)
    return 4.0 * p[..., 0] - 2.5 * p[..., 1] + 6.0 * p[..., 2]


def rotation(axis: ArrayLike, angle_deg: float) -> NDArray[np.float64]:
    """(3, 3) rotation matrix about ``axis`` by ``angle_deg`` (right-handed)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    t = np.radians(angle_deg)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(t) * k + (1 - np.cos(t)) * (k @ k)


@dataclass
class SliceTruth:
    """One written plane: its file, geometry and the HU values it stores (rows, cols)."""

    path: Path
    position: NDArray[np.float64]
    row_dir: NDArray[np.float64]
    col_dir: NDArray[np.float64]
    pixel_spacing: tuple[float, float]
    hu: NDArray[np.float64]
    instance_number: int
    time_point: int = 1

    @property
    def normal(self) -> NDArray[np.float64]:
        return np.cross(self.row_dir, self.col_dir)

    def pixel_lps(self, rows: ArrayLike | None = None, cols: ArrayLike | None = None) -> NDArray[np.float64]:
        """LPS mm of pixels ``(rows, cols)`` (all pixels, shape (R, C, 3), when both are None)."""
        if rows is None and cols is None:
            r, c = np.meshgrid(np.arange(self.hu.shape[0]), np.arange(self.hu.shape[1]), indexing="ij")
        else:
            r, c = np.asarray(rows, dtype=float), np.asarray(cols, dtype=float)
        return (self.position + np.asarray(c, dtype=float)[..., None] * self.pixel_spacing[1] * self.row_dir
                + np.asarray(r, dtype=float)[..., None] * self.pixel_spacing[0] * self.col_dir)


@dataclass
class SyntheticSeries:
    """A written series; ``slices`` are in their true order along the slice normal."""

    folder: Path
    slices: list[SliceTruth]
    series_uid: str
    study_uid: str
    files: list[Path] = field(default_factory=list)

    @property
    def positions_along_normal(self) -> NDArray[np.float64]:
        n = self.slices[0].normal
        return np.array([float(s.position @ n) for s in self.slices])


def _ds_for_slice(*, rows: int, cols: int, position: NDArray[np.float64], row_dir: NDArray[np.float64],
                  col_dir: NDArray[np.float64], pixel_spacing: tuple[float, float], stored: NDArray[np.int16],
                  series_uid: str, study_uid: str, for_uid: str, sop_uid: str, instance: int,
                  slice_thickness: float, series_number: int, modality: str, slope: float, intercept: float,
                  description: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = STUDY_DATE
    ds.StudyTime = "101500"
    ds.StudyID = "S-4711"
    ds.Modality = modality
    ds.Manufacturer = "Synthetic"
    for keyword, value in PHI.items():
        setattr(ds, keyword, value)
    ds.PatientSex = "O"
    ds.StudyDescription = "synthetic study"
    ds.SeriesDescription = description
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = for_uid
    ds.SeriesNumber = series_number
    ds.InstanceNumber = instance
    ds.SliceThickness = f"{slice_thickness:g}"
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.ImageOrientationPatient = [f"{v:.8f}" for v in (*row_dir, *col_dir)]
    ds.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.RescaleIntercept = f"{intercept:g}"
    ds.RescaleSlope = f"{slope:g}"
    ds.RescaleType = "HU"
    ds.PixelData = np.ascontiguousarray(stored, dtype="<i2").tobytes()
    return ds


def write_series(
    folder: Path,
    positions: Sequence[ArrayLike],
    *,
    row_dir: ArrayLike = (1.0, 0.0, 0.0),
    col_dir: ArrayLike = (0.0, 1.0, 0.0),
    rows: int = 32,
    cols: int = 32,
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
    values: Field = linear_field,
    slice_thickness: float = 7.77,
    shuffle: bool = True,
    seed: int = 0,
    series_uid: str | None = None,
    study_uid: str | None = None,
    empty_uids: bool = False,
    series_number: int = 3,
    modality: str = "CT",
    slope: float = 1.0,
    intercept: float = INTERCEPT,
    description: str = "synthetic series",
    per_slice: Sequence[dict[str, Any]] | None = None,
    prefix: str = "IM",
) -> SyntheticSeries:
    """Write one plane per entry of ``positions`` (ImagePositionPatient, LPS mm) into ``folder``.

    Files are written in shuffled order under shuffled names with shuffled InstanceNumbers
    (``shuffle=True``), SliceThickness is deliberately wrong, and pixel values are
    ``round(values(pixel LPS))`` HU stored as int16 with the rescale ``slope``/``intercept``.
    ``per_slice`` adds attributes to the plane of the same index (e.g. TemporalPositionIdentifier).
    With ``empty_uids`` every Study/Series/SOP/Frame-of-Reference UID is written empty.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    row = np.asarray(row_dir, dtype=float)
    col = np.asarray(col_dir, dtype=float)
    row, col = row / np.linalg.norm(row), col / np.linalg.norm(col)
    n = len(positions)
    order = rng.permutation(n) if shuffle else np.arange(n)
    numbers = rng.permutation(n) + 1 if shuffle else np.arange(n) + 1
    series = "" if empty_uids else (series_uid or generate_uid())
    study = "" if empty_uids else (study_uid or generate_uid())
    for_uid = "" if empty_uids else generate_uid()
    slices: list[SliceTruth] = []
    files: list[Path] = []
    for index in range(n):
        position = np.asarray(positions[index], dtype=float)
        truth = SliceTruth(path=Path(), position=position, row_dir=row, col_dir=col,
                           pixel_spacing=(float(pixel_spacing[0]), float(pixel_spacing[1])),
                           hu=np.zeros((rows, cols)), instance_number=int(numbers[index]))
        truth.hu = np.round(values(truth.pixel_lps()))
        stored = np.round((truth.hu - intercept) / slope)
        if stored.min() < -32768 or stored.max() > 32767:
            raise ValueError("synthetic values do not fit int16")
        truth.hu = stored * slope + intercept
        slices.append(truth)
    for written, index in enumerate(order):
        truth = slices[index]
        truth.path = folder / f"{prefix}{written:04d}.dcm"
        ds = _ds_for_slice(
            rows=rows, cols=cols, position=truth.position, row_dir=row, col_dir=col,
            pixel_spacing=truth.pixel_spacing, stored=np.round((truth.hu - intercept) / slope).astype(np.int16),
            series_uid=series, study_uid=study, for_uid=for_uid, sop_uid="" if empty_uids else generate_uid(),
            instance=truth.instance_number, slice_thickness=slice_thickness, series_number=series_number,
            modality=modality, slope=slope, intercept=intercept, description=description)
        for keyword, value in (per_slice[index] if per_slice else {}).items():
            setattr(ds, keyword, value)
        save(ds, truth.path)
        files.append(truth.path)
    # The truth, in its order along the normal (positions, not the written order).
    normal = np.cross(row, col)
    slices.sort(key=lambda s: float(s.position @ normal))
    return SyntheticSeries(folder=folder, slices=slices, series_uid=series, study_uid=study, files=files)


def save(ds: Dataset, path: Path) -> None:
    """Write ``ds`` as a DICOM file (preamble + file meta) even when its UIDs are empty."""
    ds.preamble = b"\0" * 128
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    syntax = ds.file_meta.TransferSyntaxUID
    ds.save_as(path, implicit_vr=syntax.is_implicit_VR, little_endian=syntax.is_little_endian)


# Geometries ---------------------------------------------------------------------------------------------


def stepped_positions(start: ArrayLike, step: ArrayLike, offsets: Sequence[float]) -> list[NDArray[np.float64]]:
    """Positions ``start + offset * step`` for each offset (``step`` a (3,) vector in mm)."""
    s, d = np.asarray(start, dtype=float), np.asarray(step, dtype=float)
    return [s + float(o) * d for o in offsets]


def tilted_geometry(tilt_deg: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(row_dir, col_dir) of a CT with gantry tilt: planes rotated about the patient's x axis.

    As on a real tilted CT, the positions of such planes step along patient z (the table), not
    along the plane normal.
    """
    t = np.radians(tilt_deg)
    return np.array([1.0, 0.0, 0.0]), np.array([0.0, np.cos(t), -np.sin(t)])


def oblique_geometry(angle_deg: float = 25.0,
                     axis: ArrayLike = (1.0, 2.0, 0.5)) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(row_dir, col_dir) of axial cosines rotated by ``angle_deg`` about ``axis``."""
    r = rotation(axis, angle_deg)
    return r @ np.array([1.0, 0.0, 0.0]), r @ np.array([0.0, 1.0, 0.0])


def write_axial(folder: Path, n: int = 12, *, spacing: float = 2.5, start: ArrayLike = (-20.0, -15.0, 40.0),
                **kwargs: Any) -> SyntheticSeries:
    """An axial series of ``n`` evenly spaced slices stepping along +z."""
    return write_series(folder, stepped_positions(start, (0, 0, spacing), range(n)), **kwargs)


def write_along_normal(folder: Path, offsets_mm: Sequence[float], *, row_dir: ArrayLike, col_dir: ArrayLike,
                       start: ArrayLike = (-10.0, 5.0, 30.0), **kwargs: Any) -> SyntheticSeries:
    """Planes stacked along their own normal at the given distances (mm) from ``start``."""
    normal = np.cross(np.asarray(row_dir, dtype=float), np.asarray(col_dir, dtype=float))
    normal /= np.linalg.norm(normal)
    return write_series(folder, stepped_positions(start, normal, offsets_mm), row_dir=row_dir, col_dir=col_dir,
                        **kwargs)


def write_tilted(folder: Path, n: int = 12, *, tilt_deg: float = 15.0, table_step: float = 3.0,
                 start: ArrayLike = (-20.0, -25.0, 50.0), **kwargs: Any) -> SyntheticSeries:
    """A gantry-tilted series: planes tilted by ``tilt_deg``, positions stepping along patient z."""
    row, col = tilted_geometry(tilt_deg)
    return write_series(folder, stepped_positions(start, (0, 0, table_step), range(n)), row_dir=row, col_dir=col,
                        **kwargs)


def write_enhanced(
    path: Path,
    positions: Sequence[ArrayLike],
    *,
    row_dir: ArrayLike = (1.0, 0.0, 0.0),
    col_dir: ArrayLike = (0.0, 1.0, 0.0),
    rows: int = 16,
    cols: int = 16,
    pixel_spacing: tuple[float, float] = (1.0, 1.0),
    values: Field = linear_field,
    temporal: Sequence[int] | None = None,
    temporal_index: bool = True,
    hu_per_time_point: float = 100.0,
    seed: int = 0,
) -> list[SliceTruth]:
    """One Enhanced CT file holding a frame per position (in shuffled frame order).

    Orientation, pixel spacing and rescale sit in the shared functional groups, positions and
    the time point of each frame in the per-frame groups: ``temporal[n]`` goes into
    DimensionIndexValues and, with ``temporal_index``, TemporalPositionIndex. Time point ``t``
    adds ``t * hu_per_time_point`` to the field. Returns the truth of each frame in frame order
    (``instance_number`` is the 1-based frame number).
    """
    from pydicom.sequence import Sequence as DicomSequence

    row = np.asarray(row_dir, dtype=float)
    col = np.asarray(col_dir, dtype=float)
    order = np.random.default_rng(seed).permutation(len(positions))
    truths, planes, per_frame = [], [], DicomSequence()
    for frame_number, index in enumerate(order, start=1):
        truth = SliceTruth(path=path, position=np.asarray(positions[index], dtype=float), row_dir=row, col_dir=col,
                           pixel_spacing=pixel_spacing, hu=np.zeros((rows, cols)), instance_number=frame_number)
        t = int(temporal[index]) if temporal is not None else 1
        truth.time_point = t
        truth.hu = np.round(values(truth.pixel_lps())) + t * hu_per_time_point
        truths.append(truth)
        planes.append((truth.hu - INTERCEPT).astype("<i2"))
        group, position, content = Dataset(), Dataset(), Dataset()
        position.ImagePositionPatient = [f"{v:.6f}" for v in truth.position]
        group.PlanePositionSequence = DicomSequence([position])
        content.DimensionIndexValues = [t, int(index) + 1]
        if temporal is not None and temporal_index:
            content.TemporalPositionIndex = t
        group.FrameContentSequence = DicomSequence([content])
        per_frame.append(group)
    ds = _ds_for_slice(rows=rows, cols=cols, position=truths[0].position, row_dir=row, col_dir=col,
                       pixel_spacing=pixel_spacing, stored=np.stack(planes), series_uid=generate_uid(),
                       study_uid=generate_uid(), for_uid=generate_uid(), sop_uid=generate_uid(), instance=1,
                       slice_thickness=7.77, series_number=5, modality="CT", slope=1.0, intercept=INTERCEPT,
                       description="enhanced")
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2.1"  # Enhanced CT
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "RescaleIntercept", "RescaleSlope", "RescaleType"):
        delattr(ds, keyword)
    ds.NumberOfFrames = len(positions)
    shared, measures, orientation, transform = Dataset(), Dataset(), Dataset(), Dataset()
    measures.PixelSpacing = [f"{v:g}" for v in pixel_spacing]
    measures.SliceThickness = "7.77"
    orientation.ImageOrientationPatient = [f"{v:.8f}" for v in (*row, *col)]
    transform.RescaleIntercept, transform.RescaleSlope, transform.RescaleType = f"{INTERCEPT:g}", "1", "HU"
    shared.PixelMeasuresSequence = DicomSequence([measures])
    shared.PlaneOrientationSequence = DicomSequence([orientation])
    shared.PixelValueTransformationSequence = DicomSequence([transform])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    ds.PerFrameFunctionalGroupsSequence = per_frame
    pointers = DicomSequence()
    for pointer, group_pointer in ((0x00209128, 0x00209111), (0x00209057, 0x00209111)):
        item = Dataset()
        item.DimensionIndexPointer, item.FunctionalGroupPointer = pointer, group_pointer
        pointers.append(item)
    ds.DimensionIndexSequence = pointers
    path.parent.mkdir(parents=True, exist_ok=True)
    save(ds, path)
    return truths
