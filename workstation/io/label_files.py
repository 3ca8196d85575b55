"""Label-map files: NRRD (3D Slicer segmentation keys), NIfTI (+ JSON sidecar) and DICOM SEG.

Formats, chosen by suffix
-------------------------
``.nrrd`` (also ``.seg.nrrd``)
    The integer labels on their grid (LPS on disk) with 3D Slicer's segmentation header keys
    (``Segment<N>_ID``, ``_Name``, ``_Color``, ``_LabelValue``, ``_Layer``, ``_Extent``, ``_Tags``
    with a ``TerminologyEntry``, and ``Segmentation_*``), written through SimpleITK's metadata
    dictionary. Slicer opens a ``.seg.nrrd`` written here as a segmentation. Multi-layer Slicer
    files (segments that overlap, one 3-D volume per layer) are read by merging the layers.
``.nii`` / ``.nii.gz``
    The integer labels (RAS on disk, as NIfTI demands; SimpleITK flips at the boundary) plus a
    sidecar ``<name>.json`` beside it listing each segment's value, name, colour and code. A
    sidecar holding a plain ``{"value": "name"}`` mapping is read as well.
``.dcm``
    A DICOM Segmentation (BINARY, one segment per label value, written with highdicom) that
    references the source series through its (de-identified) headers. When the label map lies on
    the source planes, every frame takes its position from its source image, so positions match
    the source grid exactly; otherwise the grid's own plane positions are written. Segment
    numbers are 1..N (the standard demands it); each segment also carries its label value in a
    private attribute (creator ``SURGICAL_TWIN``, group 0x0071), read back so values survive a
    round trip (files without it get label value = segment number). Colours travel as
    CIELab (``RecommendedDisplayCIELabValue``; back to RGB within about 1/255) and anatomic codes
    as ``SegmentedPropertyType`` / ``Category``; a segment without a code is written as the
    generic SCT 85756007 "Tissue" (3D Slicer's default) and read back without one. The source
    headers are rebuilt as pixel-free pydicom Datasets; the type-2 patient/study attributes that
    de-identification removed are added back empty (highdicom reads them), and an empty SOP Class
    UID (seen in real files) is inferred from the modality. Frames are BINARY, uncompressed.

Every label value present in the array but not described by a :class:`Segment` is written as a
segment named ``"label <value>"`` (a DICOM SEG must describe every segment, and Slicer shows only
described segments). Writes are atomic: a failure leaves any earlier file untouched.

Reading a DICOM SEG with ``reference`` places each frame on the reference grid by its position
(exact when the frames lie on that grid; otherwise the frames' own grid is resampled by nearest
neighbour). Where binary segments overlap, a label map cannot hold both: by default that is an
:class:`InputError`; ``overlap="last"`` lets the higher segment number win.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError, OutputError
from workstation.io.atomic import atomic_path
from workstation.io.nifti_integrity import check_nifti_complete
from workstation.io.segment_sidecar import read_segment_sidecar
from workstation.io.volume_files import check_geometry, integer_labels
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.volume import Volume
from workstation.sitk_image import sitk_affine, to_sitk

LABEL_SUFFIXES = (".nrrd", ".nii", ".nii.gz", ".dcm")
Overlap = Literal["error", "last"]

# Where each segment's label value is kept inside a DICOM SEG's SegmentSequence item.
PRIVATE_GROUP = 0x0071
PRIVATE_CREATOR = "SURGICAL_TWIN"
PRIVATE_LABEL_VALUE = 0x01

# 3D Slicer's generic terminology (used when a segment has no anatomical code).
TISSUE = {"scheme": "SCT", "value": "85756007", "meaning": "Tissue"}
ANATOMICAL_STRUCTURE = {"scheme": "SCT", "value": "123037004", "meaning": "Anatomical Structure"}
SLICER_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
SLICER_ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"

# Type-2 attributes highdicom reads from the first source image; de-identified headers lack them.
_TYPE2_SOURCE_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "AccessionNumber",
                            "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")
_SOP_CLASS_BY_MODALITY = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
                          "PT": "1.2.840.10008.5.1.4.1.1.128"}
_SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_POSITION_TOL_VOXELS = 0.01
_AXIS_TOL = 1e-4


def label_file_format(path: str | os.PathLike[str]) -> str:
    """``"nrrd"``, ``"nifti"`` or ``"dicom-seg"`` by suffix; ``""`` for anything else."""
    name = str(path).lower()
    if name.endswith(".nrrd"):
        return "nrrd"
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith(".dcm"):
        return "dicom-seg"
    return ""


def sidecar_path(path: str | os.PathLike[str]) -> Path:
    """The JSON sidecar of a NIfTI label map: ``labels.nii.gz`` -> ``labels.json``."""
    path = Path(path)
    stem = re.sub(r"\.nii(\.gz)?$", "", path.name, flags=re.IGNORECASE)
    return path.with_name(stem + ".json")


def _file_stem(path: Path) -> str:
    return re.sub(r"(\.seg)?\.(nrrd|nii\.gz|nii|dcm)$", "", path.name, flags=re.IGNORECASE) or path.name


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def write_label_map(label_map: LabelMap, path: str | os.PathLike[str], *,
                    source_headers: Sequence[dict[str, Any]] | None = None,
                    reference_volume: Volume | None = None) -> None:
    """Write ``label_map`` as NRRD, NIfTI (+ sidecar) or DICOM SEG, chosen by the suffix of ``path``.

    Parameters
    ----------
    label_map : the labels; values and segment names, colours and codes are kept.
    path : ``.nrrd`` / ``.seg.nrrd``, ``.nii`` / ``.nii.gz`` or ``.dcm``.
    source_headers : DICOM JSON headers of the source planes (``case.source_headers[volume_id]``);
        required for ``.dcm``, which references that series; ignored otherwise.
    reference_volume : the grid to write on (normally the source volume). When the label map lies
        on another grid, its labels are moved onto this one by position (nearest neighbour).

    Raises
    ------
    OutputError : unknown suffix, missing folder, no source headers for ``.dcm``, labels outside
        ``reference_volume``, or a write failure (any earlier file at ``path`` is left intact).
    """
    path = Path(path)
    fmt = label_file_format(path)
    if not fmt:
        raise OutputError(f"{path}: unknown label-map format; use one of {', '.join(LABEL_SUFFIXES)}")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    if reference_volume is not None:
        label_map = _onto_reference_for_writing(label_map, reference_volume, path)
    segments = _segments_to_write(label_map)
    if fmt == "nrrd":
        _write_nrrd(label_map, segments, path)
    elif fmt == "nifti":
        _write_nifti(label_map, segments, path)
    else:
        _write_dicom_seg(label_map, segments, path, source_headers)


def _segments_to_write(label_map: LabelMap) -> list[Segment]:
    """The label map's segments plus ``"label <v>"`` for present values without one, by value."""
    described = {s.value: s for s in label_map.segments}
    for value in label_map.present_values():
        described.setdefault(int(value), Segment(value=int(value), name=f"label {int(value)}"))
    return [described[v] for v in sorted(described)]


def _onto_reference_for_writing(label_map: LabelMap, reference: Volume, path: Path) -> LabelMap:
    if reference.same_grid(label_map):
        return label_map
    array = _resample_nearest(np.asarray(label_map.array), label_map.ijk_to_lps, reference)
    if label_map.array.any() and not array.any():
        raise OutputError(f"{path}: the label map does not overlap the grid of volume "
                          f"{reference.id or reference.name!r}")
    return replace(label_map, array=array.astype(label_map.array.dtype), ijk_to_lps=reference.ijk_to_lps,
                   source_volume_id=reference.id or label_map.source_volume_id)


def _storage_array(label_map: LabelMap) -> NDArray[Any]:
    array = np.asarray(label_map.array)
    top = int(array.max()) if array.size else 0
    return array.astype(np.uint8 if top < 256 else np.uint16, copy=False)


def _sitk_write(image: Any, path: Path) -> None:
    import SimpleITK as sitk

    try:
        with atomic_path(path) as tmp:
            sitk.WriteImage(image, str(tmp), True)
    except RuntimeError as exc:
        raise OutputError(f"{path}: cannot write ({_last_line(exc)})") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _last_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[-1] if text else type(exc).__name__)[:160]


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _terminology_entry(segment: Segment) -> str:
    code = segment.code
    if code and code.get("value"):
        category = {"scheme": code.get("category_scheme", ANATOMICAL_STRUCTURE["scheme"]),
                    "value": code.get("category_value", ANATOMICAL_STRUCTURE["value"]),
                    "meaning": code.get("category_meaning", ANATOMICAL_STRUCTURE["meaning"])}
        kind = {"scheme": code.get("scheme", ""), "value": code["value"], "meaning": code.get("meaning", "")}
    else:
        category, kind = TISSUE, TISSUE

    def triplet(c: dict[str, str]) -> str:
        return "^".join(_one_line(c[k]).replace("^", " ").replace("~", " ").replace("|", " ")
                        for k in ("scheme", "value", "meaning"))

    return "~".join([SLICER_CONTEXT, triplet(category), triplet(kind), "^^", SLICER_ANATOMIC_CONTEXT, "^^", "^^"])


def _write_nrrd(label_map: LabelMap, segments: list[Segment], path: Path) -> None:
    from scipy.ndimage import find_objects

    array = _storage_array(label_map)
    image = to_sitk(array, label_map.ijk_to_lps)
    boxes = find_objects(array) if array.any() else []
    image.SetMetaData("Segmentation_MasterRepresentation", "Binary labelmap")
    image.SetMetaData("Segmentation_SourceRepresentation", "Binary labelmap")
    image.SetMetaData("Segmentation_ContainedRepresentationNames", "Binary labelmap|")
    image.SetMetaData("Segmentation_ReferenceImageExtentOffset", "0 0 0")
    for n, segment in enumerate(segments):
        box = boxes[segment.value - 1] if segment.value <= len(boxes) else None
        # find_objects gives (k, j, i) slices; Slicer's extent is minI maxI minJ maxJ minK maxK.
        extent = "0 -1 0 -1 0 -1" if box is None else " ".join(f"{s.start} {s.stop - 1}" for s in box[::-1])
        r, g, b = segment.color_rgb
        fields = {
            "ID": f"Segment_{segment.value}",
            "Name": _one_line(segment.name),
            "NameAutoGenerated": "0",
            "Color": f"{r:.6g} {g:.6g} {b:.6g}",
            "ColorAutoGenerated": "0",
            "LabelValue": str(segment.value),
            "Layer": "0",
            "Extent": extent,
            "Tags": f"TerminologyEntry:{_terminology_entry(segment)}|",
        }
        for key, value in fields.items():
            image.SetMetaData(f"Segment{n}_{key}", value)
    _sitk_write(image, path)


def _write_nifti(label_map: LabelMap, segments: list[Segment], path: Path) -> None:
    import SimpleITK as sitk

    image = to_sitk(_storage_array(label_map), label_map.ijk_to_lps)
    sidecar = {
        "description": "segments of a label map (surgical-twin); voxel values are in the NIfTI file beside it",
        "image": path.name,
        "segments": [s.to_dict() for s in segments],
    }
    text = json.dumps(sidecar, indent=2) + "\n"
    try:
        # Both files are written to temporaries first and renamed together at the end.
        with ExitStack() as stack:
            tmp_image = stack.enter_context(atomic_path(path))
            tmp_sidecar = stack.enter_context(atomic_path(sidecar_path(path)))
            sitk.WriteImage(image, str(tmp_image), True)
            tmp_sidecar.write_text(text, encoding="utf-8")
    except RuntimeError as exc:
        raise OutputError(f"{path}: cannot write ({_last_line(exc)})") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


# ---- DICOM SEG ------------------------------------------------------------------------------

def _source_dataset(header: dict[str, Any]) -> Any:
    """A pixel-free pydicom Dataset from a DICOM JSON header, with the type-2 attributes highdicom reads."""
    from pydicom import Dataset

    ds = Dataset.from_json(header)
    for keyword in _TYPE2_SOURCE_ATTRIBUTES:
        if keyword not in ds:
            setattr(ds, keyword, "")
    if not str(ds.get("SOPClassUID", "") or ""):
        # Some real files carry an empty SOP Class UID; the SEG's references need one.
        ds.SOPClassUID = _SOP_CLASS_BY_MODALITY.get(str(ds.get("Modality", "")), _SECONDARY_CAPTURE)
    _share_common_frame_groups(ds)
    return ds


def _share_common_frame_groups(ds: Any) -> None:
    """Move pixel measures and orientation that every frame repeats into the shared functional group.

    Equivalent DICOM, but highdicom reads both only from the shared group of a multi-frame source
    (enhanced files from some scanners keep them per frame).
    """
    from pydicom import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    if "PerFrameFunctionalGroupsSequence" not in ds or not len(ds.PerFrameFunctionalGroupsSequence):
        return
    if "SharedFunctionalGroupsSequence" not in ds or not len(ds.SharedFunctionalGroupsSequence):
        ds.SharedFunctionalGroupsSequence = DicomSequence([Dataset()])
    shared = ds.SharedFunctionalGroupsSequence[0]
    frames = ds.PerFrameFunctionalGroupsSequence
    for keyword in ("PixelMeasuresSequence", "PlaneOrientationSequence"):
        if keyword in shared or not all(keyword in f for f in frames):
            continue
        first = frames[0][keyword].value
        if all(f[keyword].value == first for f in frames):
            setattr(shared, keyword, first)
            for frame in frames:
                del frame[keyword]


@dataclass(frozen=True)
class _Plane:
    """One source plane: its dataset, frame (0-based, ``None`` for single-frame) and geometry."""

    dataset: Any
    frame: int | None
    position: NDArray[np.float64]
    orientation: NDArray[np.float64]
    spacing: NDArray[np.float64]  # (row spacing, column spacing) in mm
    rows: int
    columns: int


def _item_attr(groups: Sequence[Any], sequence: str, keyword: str) -> Any:
    for group in groups:
        if group is not None and sequence in group and len(group[sequence].value):
            item = group[sequence].value[0]
            if keyword in item:
                return item[keyword].value
    return None


def _source_planes(ds: Any) -> list[_Plane]:
    """Planes of a source image (one, or one per frame of an enhanced multi-frame image)."""
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    if "PerFrameFunctionalGroupsSequence" in ds:
        shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
        planes = []
        for index, frame in enumerate(ds.PerFrameFunctionalGroupsSequence):
            groups = (frame, shared)
            ipp = _item_attr(groups, "PlanePositionSequence", "ImagePositionPatient")
            iop = _item_attr(groups, "PlaneOrientationSequence", "ImageOrientationPatient")
            ps = _item_attr(groups, "PixelMeasuresSequence", "PixelSpacing")
            if ipp is None or iop is None or ps is None:
                return []
            planes.append(_Plane(ds, index, np.array(ipp, float), np.array(iop, float), np.array(ps, float),
                                 rows, columns))
        return planes
    if not all(k in ds for k in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")):
        return []
    return [_Plane(ds, None, np.array(ds.ImagePositionPatient, float), np.array(ds.ImageOrientationPatient, float),
                   np.array(ds.PixelSpacing, float), rows, columns)]


def _slice_of_plane(plane: _Plane, affine: NDArray[np.float64], shape: tuple[int, ...]) -> int | None:
    """The k of the label-map slice this plane is, or ``None`` when it is not one of its slices."""
    n_k, n_j, n_i = shape
    if (plane.rows, plane.columns) != (n_j, n_i):
        return None
    u, v = affine[:3, 0], affine[:3, 1]
    su, sv = np.linalg.norm(u), np.linalg.norm(v)
    if not (np.allclose(plane.orientation[:3], u / su, atol=_AXIS_TOL)
            and np.allclose(plane.orientation[3:], v / sv, atol=_AXIS_TOL)
            and np.allclose(plane.spacing, [sv, su], rtol=_AXIS_TOL, atol=1e-6)):
        return None
    ijk = (np.linalg.inv(affine) @ np.append(plane.position, 1.0))[:3]
    k = int(round(ijk[2]))
    if np.any(np.abs(ijk - [0, 0, k]) > _POSITION_TOL_VOXELS) or not 0 <= k < n_k:
        return None
    return k


def _planes_per_slice(label_map: LabelMap, planes: list[_Plane]) -> list[_Plane] | None:
    """The source plane of every label-map slice, in k order, or ``None`` when the planes are not its slices.

    Several planes at one position (e.g. two images per position in one enhanced file) keep the first.
    """
    shape = label_map.array.shape
    by_k: dict[int, _Plane] = {}
    for plane in planes:
        k = _slice_of_plane(plane, label_map.ijk_to_lps, shape)
        if k is None:
            return None
        by_k.setdefault(k, plane)
    if sorted(by_k) != list(range(shape[0])):
        return None
    return [by_k[k] for k in range(shape[0])]


def _explicit_geometry(label_map: LabelMap, matched: list[_Plane] | None) -> dict[str, Any]:
    """Pixel measures, orientation and one position per slice, copied from the matched source planes when
    there are any, else computed from the label map's grid (highdicom then reads no geometry from the sources)."""
    import highdicom as hd

    affine = np.asarray(label_map.ijk_to_lps, dtype=float)
    u, v, w = affine[:3, 0], affine[:3, 1], affine[:3, 2]
    orientation = np.concatenate([u / np.linalg.norm(u), v / np.linalg.norm(v)])
    spacing_k = _slice_spacing(label_map)
    if matched is not None:
        orientation = matched[0].orientation
        positions = [p.position for p in matched]
    else:
        positions = [affine[:3, 3] + k * w for k in range(label_map.array.shape[0])]
    return {
        "pixel_measures": hd.PixelMeasuresSequence(
            pixel_spacing=(float(np.linalg.norm(v)), float(np.linalg.norm(u))), slice_thickness=spacing_k,
            spacing_between_slices=spacing_k),
        "plane_orientation": hd.PlaneOrientationSequence(coordinate_system="PATIENT",
                                                         image_orientation=[float(x) for x in orientation]),
        "plane_positions": [hd.PlanePositionSequence(coordinate_system="PATIENT",
                                                     image_position=[float(x) for x in position])
                            for position in positions],
    }


def _slice_spacing(label_map: LabelMap) -> float:
    """Distance (mm) between the label map's slices along the normal of its planes."""
    affine = np.asarray(label_map.ijk_to_lps, dtype=float)
    normal = np.cross(affine[:3, 0], affine[:3, 1])
    return abs(float(affine[:3, 2] @ normal / np.linalg.norm(normal)))


def _state_slice_spacing(seg: Any, label_map: LabelMap) -> None:
    from pydicom.valuerep import format_number_as_ds

    spacing = format_number_as_ds(_slice_spacing(label_map))
    for group in (seg.SharedFunctionalGroupsSequence[0], *seg.get("PerFrameFunctionalGroupsSequence", [])):
        for item in group.get("PixelMeasuresSequence", []):
            item.SpacingBetweenSlices = spacing


def _coded(code: dict[str, str], prefix: str = "") -> Any:
    from highdicom.sr import CodedConcept

    return CodedConcept(value=str(code[f"{prefix}value"]), scheme_designator=str(code[f"{prefix}scheme"]),
                        meaning=str(code[f"{prefix}meaning"]))


def _segment_description(number: int, segment: Segment, label_map: LabelMap) -> Any:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    code = segment.code if segment.code and segment.code.get("value") else None
    if code is None:
        category, kind = _coded(TISSUE), _coded(TISSUE)
    else:
        kind = _coded({"scheme": code.get("scheme", "SCT"), "value": code["value"],
                       "meaning": code.get("meaning", segment.name)})
        category = _coded(code, "category_") if code.get("category_value") else _coded(ANATOMICAL_STRUCTURE)
    deep = label_map.provenance.get("method") == "deep-learning"
    identification = hd.AlgorithmIdentificationSequence(
        name=str(label_map.provenance.get("backend", "surgical-twin"))[:64],
        family=codes.cid7162.ArtificialIntelligence if deep else codes.cid7162.MorphologicalOperations,
        version=_software_version())
    r, g, b = (min(max(c * 255.0, 0.0), 255.0) for c in segment.color_rgb)
    description = hd.seg.SegmentDescription(
        segment_number=number, segment_label=_one_line(segment.name)[:64], segmented_property_category=category,
        segmented_property_type=kind, algorithm_type="AUTOMATIC" if deep else "SEMIAUTOMATIC",
        algorithm_identification=identification, display_color=hd.color.CIELabColor.from_rgb(r, g, b))
    block = description.private_block(PRIVATE_GROUP, PRIVATE_CREATOR, create=True)
    block.add_new(PRIVATE_LABEL_VALUE, "US", int(segment.value))
    return description


def _software_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("surgical-twin")
    except PackageNotFoundError:
        return "0"


def _write_dicom_seg(label_map: LabelMap, segments: list[Segment], path: Path,
                     source_headers: Sequence[dict[str, Any]] | None) -> None:
    import highdicom as hd

    if not source_headers:
        raise OutputError(f"{path}: a DICOM SEG must reference its source series, and this label map's volume has "
                          "no DICOM headers (import the series from DICOM, or write .nrrd / .nii.gz)")
    if not segments:
        raise OutputError(f"{path}: the label map has no segments and no labels; a DICOM SEG needs at least one")
    try:
        sources = [_source_dataset(h) for h in source_headers]
    except Exception as exc:  # pydicom raises several types for malformed JSON
        raise OutputError(f"{path}: the source DICOM headers cannot be rebuilt ({_last_line(exc)})") from None
    planes = [p for ds in sources for p in _source_planes(ds)]
    if not planes:
        raise OutputError(f"{path}: the source DICOM headers carry no plane positions; cannot reference them")
    if len({str(ds.get("FrameOfReferenceUID", "")) for ds in sources}) > 1:
        raise OutputError(f"{path}: the source headers belong to more than one frame of reference")

    numbers = {s.value: n for n, s in enumerate(segments, start=1)}
    lut = np.zeros(int(max(numbers)) + 1, dtype=np.uint8 if len(segments) < 256 else np.uint16)
    for value, number in numbers.items():
        lut[value] = number
    seg_array = lut[np.asarray(label_map.array)]
    descriptions = [_segment_description(numbers[s.value], s, label_map) for s in segments]

    single_frame = all(p.frame is None for p in planes)
    matched = _planes_per_slice(label_map, planes)
    if matched is not None and single_frame and len(matched) == len(planes):
        # One source image per slice: highdicom copies each frame's position from its source, exactly.
        source_images, geometry = [p.dataset for p in matched], {}
    else:
        # Enhanced multi-frame sources, or a grid other than the source planes: positions given explicitly
        # (the matched source planes' own when the grid is theirs), in the sources' frame of reference.
        # highdicom takes several single-frame images or one multi-frame image; further ones are referenced.
        source_images = sources if single_frame else sources[:1]
        geometry = _explicit_geometry(label_map, matched)
        if not single_frame and len(sources) > 1:
            geometry["further_source_images"] = sources[1:]
    first = source_images[0]
    series_number = int(first.get("SeriesNumber", 0) or 0) + 1000
    try:
        seg = hd.seg.Segmentation(
            source_images=source_images, pixel_array=seg_array, segmentation_type="BINARY",
            segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=series_number,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="surgical-twin",
            manufacturer_model_name="surgical-twin workstation", software_versions=_software_version(),
            device_serial_number="", content_label="LABELS",
            content_description=_one_line(label_map.name or "label map")[:64],
            series_description=_one_line(f"Segmentation {label_map.name}".strip())[:64],
            omit_empty_frames=bool(seg_array.any()), specific_character_set="ISO_IR 192", **geometry)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise OutputError(f"{path}: cannot build the DICOM SEG ({type(exc).__name__}: {_last_line(exc)})") from None
    if geometry:
        # highdicom copies the source's pixel measures whenever the pixel spacing matches, SpacingBetweenSlices
        # included; on a grid of its own (e.g. a gantry-tilt series resampled along the slice normal) the SEG
        # must state the grid's spacing.
        _state_slice_spacing(seg, label_map)
    try:
        with atomic_path(path) as tmp:
            seg.save_as(tmp)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def read_label_map_file(path: str | os.PathLike[str], *, reference: Volume | None = None,
                        overlap: Overlap = "error") -> LabelMap:
    """Read a label map (NRRD, NIfTI + sidecar, or DICOM SEG) with its segments.

    Parameters
    ----------
    path : ``.nrrd`` / ``.seg.nrrd``, ``.nii`` / ``.nii.gz`` or ``.dcm`` (DICOM SEG).
    reference : when given, the labels are placed on this volume's grid by physical position
        (nearest neighbour; exact where the grids coincide) and ``source_volume_id`` names it.
    overlap : what to do where segments overlap (DICOM SEG segments, multi-layer Slicer files):
        ``"error"`` raises :class:`InputError`; ``"last"`` lets the higher segment number win.

    Returns
    -------
    LabelMap : (K, J, I) uint8 or uint16 labels; segments from the file's metadata.

    Raises
    ------
    InputError : missing or unreadable file, unknown format, non-integer or negative labels,
        overlapping segments (with ``overlap="error"``), or labels that do not overlap ``reference``.
    """
    path = Path(path)
    fmt = label_file_format(path)
    if not fmt:
        raise InputError(f"{path}: unknown label-map format; use one of {', '.join(LABEL_SUFFIXES)}")
    if overlap not in ("error", "last"):
        raise InputError(f"overlap must be 'error' or 'last', got {overlap!r}")
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if fmt == "dicom-seg":
        array, affine, segments, info = _read_dicom_seg(path, reference, overlap)
    else:
        array, affine, segments, info = _read_sitk_labels(path, fmt, overlap)
        if reference is not None:
            array, affine = _onto_reference_for_reading(array, affine, reference, path)
    if array.size and array.min() < 0:
        raise InputError(f"{path}: holds negative labels")
    top = int(array.max()) if array.size else 0
    if top > 65535:
        raise InputError(f"{path}: label values above 65535")
    try:
        return LabelMap(array=array.astype(np.uint8 if top < 256 else np.uint16), ijk_to_lps=affine,
                        segments=tuple(segments), name=_file_stem(path),
                        source_volume_id=reference.id if reference is not None else "",
                        provenance={"source": {"kind": "file", "format": info}})
    except ValueError as exc:  # e.g. a header whose spacing or directions are degenerate
        raise InputError(f"{path}: not a usable label map ({_last_line(exc)})") from None


def _resample_nearest(array: NDArray[Any], affine: NDArray[np.float64], reference: Volume) -> NDArray[Any]:
    import SimpleITK as sitk

    moving = to_sitk(np.asarray(array).astype(np.int32), affine)
    target = to_sitk(np.zeros(reference.shape, dtype=np.uint8), reference.ijk_to_lps)
    out = sitk.Resample(moving, target, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkInt32)
    return sitk.GetArrayFromImage(out)


def _grids_overlap(shape: tuple[int, ...], affine: NDArray[np.float64], reference: Volume) -> bool:
    ones = _resample_nearest(np.ones(shape, dtype=np.uint8), affine, reference)
    return bool(ones.any())


def _onto_reference_for_reading(array: NDArray[Any], affine: NDArray[np.float64], reference: Volume,
                                path: Path) -> tuple[NDArray[Any], NDArray[np.float64]]:
    if array.shape == reference.shape and np.allclose(affine, reference.ijk_to_lps, atol=1e-3):
        return array, np.array(reference.ijk_to_lps)
    out = _resample_nearest(array, affine, reference)
    if not out.any() and (array.any() or not _grids_overlap(array.shape, affine, reference)):
        raise InputError(f"{path}: its labels do not overlap the grid of volume {reference.id or reference.name!r}")
    return out, np.array(reference.ijk_to_lps)


# ---- NRRD / NIfTI ---------------------------------------------------------------------------

def _read_sitk_labels(path: Path, fmt: str, overlap: Overlap
                      ) -> tuple[NDArray[Any], NDArray[np.float64], list[Segment], str]:
    import SimpleITK as sitk

    check_nifti_complete(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(f"{path}: not a readable label map ({_last_line(exc)})") from None
    if image.GetDimension() != 3:
        raise InputError(f"{path}: a {image.GetDimension()}-D image; a 3-D label map is needed")
    check_geometry(image, path)
    array = integer_labels(sitk.GetArrayFromImage(image), path)
    affine = sitk_affine(image)
    if fmt == "nrrd":
        meta = _metadata(image)
        if array.ndim == 4 and not any(re.match(r"Segment\d+_", key) for key in meta):
            # Several components per voxel are layers only in a Slicer segmentation that describes them.
            raise InputError(f"{path}: {array.shape[-1]} components per voxel and no segment layers described "
                             "(Segment<N>_Layer); a label map has one value per voxel")
        array, segments = _slicer_segments(path, array, meta, overlap)
        return array, affine, segments, "nrrd"
    if array.ndim == 4:
        raise InputError(f"{path}: {array.shape[-1]} components per voxel; a label map has one")
    return array, affine, _sidecar_segments(path), "nifti"


def _metadata(image: Any) -> dict[str, str]:
    """The image's header fields; a field whose text is not UTF-8 (a damaged or foreign header) is left out."""
    meta = {}
    for key in image.GetMetaDataKeys():
        try:
            meta[key] = image.GetMetaData(key)
        except (TypeError, UnicodeDecodeError):
            continue
    return meta


def _parse_terminology(tags: str) -> dict[str, str] | None:
    for pair in tags.split("|"):
        key, _, value = pair.partition(":")
        if key.strip() != "TerminologyEntry":
            continue
        parts = value.split("~")
        if len(parts) < 3:
            return None
        category, kind = (p.split("^") for p in parts[1:3])
        if len(kind) < 3 or not kind[1] or (kind[0], kind[1]) == (TISSUE["scheme"], TISSUE["value"]):
            return None
        code = {"scheme": kind[0], "value": kind[1], "meaning": kind[2]}
        if len(category) >= 3 and category[1]:
            code.update(category_scheme=category[0], category_value=category[1], category_meaning=category[2])
        return code
    return None


def _parse_color(text: str | None) -> tuple[float, float, float] | None:
    try:
        rgb = tuple(float(x) for x in (text or "").split())
    except ValueError:
        return None
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        return None
    return rgb  # type: ignore[return-value]


def _slicer_segments(path: Path, array: NDArray[Any], meta: dict[str, str], overlap: Overlap
                     ) -> tuple[NDArray[Any], list[Segment]]:
    """Segments from Slicer's ``Segment<N>_*`` keys; layers (a 4-D list image) merged into one array."""
    indices = sorted({int(m.group(1)) for key in meta if (m := re.match(r"Segment(\d+)_", key))})
    layered = array.ndim == 4
    layers = array.shape[-1] if layered else 1
    entries = []
    for n in indices:
        def get(field: str, n: int = n) -> str | None:
            return meta.get(f"Segment{n}_{field}")
        try:
            layer = int(get("Layer") or 0)
            value = int(get("LabelValue") or (1 if layered else n + 1))
        except ValueError:
            raise InputError(f"{path}: Segment{n}_LabelValue / _Layer are not integers") from None
        if not 0 <= layer < layers:
            raise InputError(f"{path}: Segment{n}_Layer = {layer}, but the file holds {layers} layer(s)")
        entries.append((n, layer, value, get("Name") or f"segment {n}", _parse_color(get("Color")),
                        _parse_terminology(get("Tags") or "")))
    if not layered:
        segments, seen = [], set()
        for _, _, value, name, color, code in entries:
            if value in seen or value <= 0:
                continue
            seen.add(value)
            segments.append(Segment(value=value, name=name, color_rgb=color or Segment(1, "x").color_rgb, code=code))
        return array, segments
    # Layers: keep each segment's label value when unique across the file, else number segments 1..N.
    values = [e[2] for e in entries]
    renumber = len(set(values)) != len(values)
    merged = np.zeros(array.shape[:3], dtype=np.int64)
    owner = np.zeros(array.shape[:3], dtype=np.int64)
    segments = []
    for position, (_n, layer, value, name, color, code) in enumerate(entries, start=1):
        new_value = position if renumber else value
        mask = array[..., layer] == value
        clash = mask & (merged != 0)
        if clash.any():
            other = entries[int(owner[clash][0]) - 1]
            if overlap == "error":
                raise InputError(f"{path}: segments {other[3]!r} and {name!r} overlap in {int(clash.sum())} voxels; a "
                                 "label map holds one label per voxel (read with overlap='last' to let the later win)")
        merged[mask] = new_value
        owner[mask] = position
        segments.append(Segment(value=new_value, name=name, color_rgb=color or Segment(1, "x").color_rgb, code=code))
    return merged, segments


def _sidecar_segments(path: Path) -> list[Segment]:
    side = sidecar_path(path)
    if not side.is_file():
        return []
    default = Segment(1, "x").color_rgb
    return [Segment(value=s.value, name=s.name, color_rgb=s.color_rgb or default, code=s.code)
            for s in read_segment_sidecar(side)]


# ---- DICOM SEG ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _SegFrame:
    index: int  # 0-based frame index
    segment_number: int | None  # None for a LABELMAP SEG (pixel values are segment numbers)
    position: NDArray[np.float64]
    orientation: NDArray[np.float64]
    spacing: NDArray[np.float64]  # (row spacing, column spacing)


def _seg_frames(seg: Any, path: Path) -> list[_SegFrame]:
    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None
    per_frame = seg.PerFrameFunctionalGroupsSequence if "PerFrameFunctionalGroupsSequence" in seg else []
    n_frames = int(seg.get("NumberOfFrames", 1) or 1)
    if len(per_frame) not in (0, n_frames):
        raise InputError(f"{path}: {len(per_frame)} per-frame groups for {n_frames} frames")
    labelmap_type = str(seg.get("SegmentationType", "")) == "LABELMAP"
    frames = []
    for index in range(n_frames):
        groups = (per_frame[index] if per_frame else None, shared)
        ipp = _item_attr(groups, "PlanePositionSequence", "ImagePositionPatient")
        iop = _item_attr(groups, "PlaneOrientationSequence", "ImageOrientationPatient")
        ps = _item_attr(groups, "PixelMeasuresSequence", "PixelSpacing")
        if ipp is None or iop is None or ps is None:
            raise InputError(f"{path}: frame {index + 1} has no patient position, orientation or pixel spacing")
        number = None if labelmap_type else _item_attr(groups, "SegmentIdentificationSequence",
                                                       "ReferencedSegmentNumber")
        if number is None and not labelmap_type:
            raise InputError(f"{path}: frame {index + 1} names no segment")
        frames.append(_SegFrame(index, None if number is None else int(number), np.array(ipp, float),
                                np.array(iop, float), np.array(ps, float)))
    return frames


def _frame_offsets(frames: list[_SegFrame], affine: NDArray[np.float64], shape: tuple[int, ...]
                   ) -> list[tuple[int, int, int]] | None:
    """(k, j0, i0) of every frame's first pixel on a grid, or ``None`` when a frame is not aligned with it."""
    inv = np.linalg.inv(affine)
    offsets = []
    for f in frames:
        col_step = inv[:3, :3] @ (f.orientation[:3] * f.spacing[1])
        row_step = inv[:3, :3] @ (f.orientation[3:] * f.spacing[0])
        if not (np.allclose(col_step, [1, 0, 0], atol=_AXIS_TOL * 10)
                and np.allclose(row_step, [0, 1, 0], atol=_AXIS_TOL * 10)):
            return None
        ijk = (inv @ np.append(f.position, 1.0))[:3]
        rounded = np.rint(ijk)
        if np.any(np.abs(ijk - rounded) > _POSITION_TOL_VOXELS):
            return None
        offsets.append((int(rounded[2]), int(rounded[1]), int(rounded[0])))
    return offsets


def _frames_grid(frames: list[_SegFrame], rows: int, columns: int, seg: Any, path: Path
                 ) -> tuple[NDArray[np.float64], tuple[int, int, int]]:
    """The regular grid the frames lie on (frames with the same orientation, positions on one line)."""
    orientation, spacing = frames[0].orientation, frames[0].spacing
    if any(not np.allclose(f.orientation, orientation, atol=_AXIS_TOL)
           or not np.allclose(f.spacing, spacing, rtol=_AXIS_TOL) for f in frames):
        raise InputError(f"{path}: its frames differ in orientation or pixel spacing; give a reference volume")
    normal = np.cross(orientation[:3], orientation[3:])
    distances = np.array([f.position @ normal for f in frames])
    order = np.argsort(distances, kind="stable")
    unique_d, first = np.unique(np.round(distances[order], 4), return_index=True)
    positions = np.array([frames[order[i]].position for i in first])
    step = _item_attr((seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None,),
                      "PixelMeasuresSequence", "SpacingBetweenSlices")
    gaps = np.diff(unique_d)
    # The stated SpacingBetweenSlices first; writers copy it from a source whose spacing differs (a SEG
    # of a gantry-tilt series resampled along the normal), so the smallest gap between frames next.
    stated = [float(step)] if step and float(step) > 0 else []
    candidates = stated + ([float(gaps.min())] if gaps.size else []) or [1.0]
    for spacing_k in candidates:
        if not gaps.size:
            steps, w = np.zeros(1, int), normal * spacing_k
            break
        steps = np.rint((unique_d - unique_d[0]) / spacing_k).astype(int)
        if len(np.unique(steps)) != len(steps):
            continue
        w = (positions[-1] - positions[0]) / steps[-1]
        predicted = positions[0] + steps[:, None] * w
        if np.abs(predicted - positions).max() <= 0.01 * min(spacing_k, *spacing):
            break
    else:
        raise InputError(f"{path}: its frames do not lie on a regular grid; give a reference volume")
    affine = np.eye(4)
    affine[:3, 0] = orientation[:3] * spacing[1]
    affine[:3, 1] = orientation[3:] * spacing[0]
    affine[:3, 2] = w
    affine[:3, 3] = positions[0]
    return affine, (int(steps[-1]) + 1, rows, columns)


def _seg_segments(seg: Any) -> tuple[list[Segment], dict[int, int]]:
    """Segments of a SEG and the label value of each segment number."""
    import highdicom as hd

    items = list(seg.SegmentSequence) if "SegmentSequence" in seg else []
    stored: dict[int, int] = {}
    for item in items:
        try:
            block = item.private_block(PRIVATE_GROUP, PRIVATE_CREATOR)
            stored[int(item.SegmentNumber)] = int(block[PRIVATE_LABEL_VALUE].value)
        except (KeyError, ValueError, TypeError):
            pass
    numbers = [int(item.SegmentNumber) for item in items]
    use_stored = (len(stored) == len(items) and len(set(stored.values())) == len(stored)
                  and all(0 < v <= 65535 for v in stored.values()))
    value_of = {n: (stored[n] if use_stored else n) for n in numbers}
    segments = []
    for item in items:
        number = int(item.SegmentNumber)
        color = Segment(1, "x").color_rgb
        if "RecommendedDisplayCIELabValue" in item:
            try:
                rgb = hd.color.CIELabColor.from_dicom_value(list(item.RecommendedDisplayCIELabValue)).to_rgb(clip=True)
                color = tuple(min(max(float(c) / 255.0, 0.0), 1.0) for c in rgb)
            except (ValueError, TypeError):
                pass
        code = None
        kind = item.get("SegmentedPropertyTypeCodeSequence")
        if kind and (kind[0].get("CodingSchemeDesignator"), kind[0].get("CodeValue")) != (TISSUE["scheme"],
                                                                                          TISSUE["value"]):
            code = {"scheme": str(kind[0].get("CodingSchemeDesignator", "")),
                    "value": str(kind[0].get("CodeValue", "")), "meaning": str(kind[0].get("CodeMeaning", ""))}
            category = item.get("SegmentedPropertyCategoryCodeSequence")
            if category:
                code.update(category_scheme=str(category[0].get("CodingSchemeDesignator", "")),
                            category_value=str(category[0].get("CodeValue", "")),
                            category_meaning=str(category[0].get("CodeMeaning", "")))
        name = str(item.get("SegmentLabel", "") or "").strip() or f"segment {number}"
        segments.append(Segment(value=value_of[number], name=name, color_rgb=color, code=code))
    return segments, value_of


def _read_dicom_seg(path: Path, reference: Volume | None, overlap: Overlap
                    ) -> tuple[NDArray[Any], NDArray[np.float64], list[Segment], str]:
    import highdicom as hd

    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:  # pydicom / highdicom raise many types for a file that is not a SEG
        raise InputError(f"{path}: not a readable DICOM SEG ({_last_line(exc)})") from None
    kind = str(seg.get("SegmentationType", ""))
    if kind not in ("BINARY", "FRACTIONAL", "LABELMAP"):
        raise InputError(f"{path}: unsupported SegmentationType {kind!r}")
    segments, value_of = _seg_segments(seg)
    names = {n: s.name for n, s in zip(value_of, segments, strict=True)}
    frames = _seg_frames(seg, path)
    rows, columns = int(seg.Rows), int(seg.Columns)
    # Frames in ascending segment number, so that with overlap="last" the higher number wins.
    frames.sort(key=lambda f: (f.segment_number or 0, f.index))
    # On the reference grid directly when every frame lies on it; else on the frames' own grid.
    offsets = None if reference is None else _frame_offsets(frames, reference.ijk_to_lps, reference.shape)
    on_reference = offsets is not None
    if reference is not None and offsets is not None:
        affine, shape = np.array(reference.ijk_to_lps), reference.shape
    else:
        affine, shape = _frames_grid(frames, rows, columns, seg, path)
        offsets = _frame_offsets(frames, affine, shape)
        if offsets is None:  # cannot happen for a grid built from the frames themselves
            raise InputError(f"{path}: its frames do not lie on a regular grid")
    max_value = max([*value_of.values(), 1])
    array = np.zeros(shape, dtype=np.uint8 if max_value < 256 else np.uint16)
    threshold = 0.5 * float(seg.get("MaximumFractionalValue", 1) or 1) if kind == "FRACTIONAL" else 0.5
    landed = False
    for f, (k, j0, i0) in zip(frames, offsets, strict=True):
        if not 0 <= k < shape[0]:
            continue
        j1, i1 = min(j0 + rows, shape[1]), min(i0 + columns, shape[2])
        fj0, fi0 = max(0, -j0), max(0, -i0)
        if j1 <= max(j0, 0) or i1 <= max(i0, 0):
            continue
        landed = True
        try:
            frame = seg.get_stored_frame(f.index + 1)
        except Exception as exc:  # pydicom / numpy raise several types for short or damaged pixel data
            raise InputError(f"{path}: frame {f.index + 1} cannot be read: damaged or truncated pixel data "
                             f"({_last_line(exc)})") from None
        pixels = frame[fj0:fj0 + j1 - max(j0, 0), fi0:fi0 + i1 - max(i0, 0)]
        region = array[k, max(j0, 0):j1, max(i0, 0):i1]
        for number, mask in _frame_masks(f, pixels, threshold, value_of):
            value = value_of[number]
            clash = mask & (region != 0) & (region != value)
            if clash.any() and overlap == "error":
                other = next(n for n, v in value_of.items() if v == int(region[clash][0]))
                raise InputError(f"{path}: segments {names[other]!r} and {names[number]!r} overlap in "
                                 f"{int(clash.sum())} voxels of slice {k}; a label map holds one label per voxel "
                                 "(read with overlap='last' to let the higher segment number win)")
            region[mask] = value
    if reference is not None and not on_reference:
        array, affine = _onto_reference_for_reading(array, affine, reference, path)
    elif reference is not None and not landed:
        raise InputError(f"{path}: its frames do not overlap the grid of volume {reference.id or reference.name!r}")
    return array, np.array(affine), segments, f"DICOM SEG ({kind})"


def _frame_masks(frame: _SegFrame, pixels: NDArray[Any], threshold: float, value_of: dict[int, int]
                 ) -> Iterator[tuple[int, NDArray[np.bool_]]]:
    if frame.segment_number is not None:
        if frame.segment_number in value_of:
            yield frame.segment_number, pixels >= threshold
        return
    for number in np.unique(pixels):  # LABELMAP: pixel values are segment numbers
        if int(number) in value_of:
            yield int(number), pixels == number
