"""NIfTI and NRRD volumes and label maps through SimpleITK.

SimpleITK works in LPS, as the model does; the RAS <-> LPS flip of NIfTI happens inside
its NIfTI reader and writer, i.e. only at this file boundary. NRRD files are written with
``space: left-posterior-superior``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError, OutputError
from workstation.io.atomic import atomic_path
from workstation.io.nifti_integrity import check_nifti_complete
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.volume import Volume
from workstation.sitk_image import sitk_affine, to_sitk

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def is_volume_file(path: str | os.PathLike[str]) -> bool:
    return str(path).lower().endswith(VOLUME_SUFFIXES)


def _read_sitk(path: Path) -> Any:
    import SimpleITK as sitk

    if not path.is_file():
        raise InputError(f"{path}: no such file")
    check_nifti_complete(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else "unreadable"
        raise InputError(f"{path}: not a readable image ({reason[:160]})") from None
    if image.GetDimension() != 3:
        raise InputError(f"{path}: a {image.GetDimension()}-D image; a 3-D volume is needed")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: {image.GetNumberOfComponentsPerPixel()} components per voxel; a scalar "
                         "volume is needed")
    check_geometry(image, path)
    return image


def check_geometry(image: Any, path: Path) -> None:
    """InputError naming ``path`` when a SimpleITK image's grid is degenerate (zero, negative or non-finite
    spacing, singular directions): what a damaged header gives."""
    affine = sitk_affine(image)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    if (not np.isfinite(affine).all() or not (spacing > 1e-6).all()
            or abs(np.linalg.det(affine[:3, :3])) < 1e-9 * float(np.prod(spacing))):
        raise InputError(f"{path}: degenerate grid in the header (spacing {tuple(float(f'{x:.4g}') for x in spacing)} "
                         "mm or singular directions)")


def read_volume(path: str | os.PathLike[str], *, modality: str = "OT", name: str = "") -> Volume:
    """Read a NIfTI/NRRD/MetaImage volume (geometry converted to LPS by SimpleITK)."""
    import SimpleITK as sitk

    path = Path(path)
    image = _read_sitk(path)
    return Volume(array=sitk.GetArrayFromImage(image), ijk_to_lps=sitk_affine(image), modality=modality,
                  name=name or path.name.split(".")[0],
                  provenance={"source": {"kind": "file", "format": "".join(path.suffixes[-2:])}})


def write_image(array: np.ndarray, ijk_to_lps: np.ndarray, path: str | os.PathLike[str], *,
                compress: bool = True) -> None:
    """Write an array on a grid as NIfTI or NRRD (by suffix), atomically."""
    import SimpleITK as sitk

    path = Path(path)
    if not is_volume_file(path):
        raise OutputError(f"{path}: unknown volume format; use one of {', '.join(VOLUME_SUFFIXES)}")
    image = to_sitk(array, ijk_to_lps)
    try:
        with atomic_path(path) as tmp:
            sitk.WriteImage(image, str(tmp), compress, 1 if compress else -1)
    except RuntimeError as exc:
        raise OutputError(f"{path}: cannot write ({str(exc).strip().splitlines()[-1][:160]})") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


def write_volume(volume: Volume, path: str | os.PathLike[str], *, compress: bool = True) -> None:
    """Write ``volume`` as NIfTI (.nii/.nii.gz, RAS on disk) or NRRD (LPS on disk)."""
    write_image(volume.array, volume.ijk_to_lps, path, compress=compress)


def integer_labels(array: NDArray[Any], path: Path) -> NDArray[Any]:
    """``array`` if integer, else rounded to int64; InputError naming ``path`` when the values are not whole."""
    if np.issubdtype(array.dtype, np.integer):
        return array
    rounded = np.rint(array)
    if not np.allclose(array, rounded):
        raise InputError(f"{path}: holds non-integer values; a label map needs integer labels")
    return rounded.astype(np.int64)


def read_label_map(path: str | os.PathLike[str], *, reference: Volume | None = None,
                   segments: tuple[Segment, ...] = ()) -> LabelMap:
    """Read a label map; with ``reference``, resample it onto that grid by position (nearest neighbour).

    Raises :class:`InputError` when the file is not integer-valued or does not overlap ``reference``.
    """
    import SimpleITK as sitk

    path = Path(path)
    image = _read_sitk(path)
    array = integer_labels(sitk.GetArrayFromImage(image), path)
    if reference is not None and not (array.shape == reference.shape and np.allclose(
            sitk_affine(image), reference.ijk_to_lps, atol=1e-3)):
        ref_image = to_sitk(np.zeros(reference.shape, dtype=np.uint8), reference.ijk_to_lps)
        image = sitk.Resample(_with_array(image, array), ref_image,
                              sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkInt32)
        array = sitk.GetArrayFromImage(image)
        if not array.any():
            raise InputError(f"{path}: its labels do not overlap the volume's grid")
        affine = reference.ijk_to_lps
    else:
        affine = sitk_affine(image)
    if array.min() < 0:
        raise InputError(f"{path}: holds negative labels")
    dtype = np.uint8 if array.max() < 256 else np.uint16 if array.max() < 65536 else None
    if dtype is None:
        raise InputError(f"{path}: label values above 65535")
    return LabelMap(array=array.astype(dtype), ijk_to_lps=affine, segments=segments,
                    source_volume_id=reference.id if reference is not None else "",
                    name=path.name.split(".")[0], provenance={"source": {"kind": "file"}})


def _with_array(image: Any, array: np.ndarray) -> Any:
    import SimpleITK as sitk

    out = sitk.GetImageFromArray(array.astype(np.int32))
    out.CopyInformation(image)
    return out
