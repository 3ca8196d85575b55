"""Thresholding, CT presets and the bone preset."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from segmentation.body import body_mask
from segmentation.islands import remove_small
from segmentation.morphology import close_mask, fill_holes
from segmentation.structuring import ball
from workstation.model.volume import Volume


def threshold(volume: Volume, *, lower: float = -np.inf, upper: float = np.inf,
              within: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
    """(K, J, I) mask of voxels with ``lower <= value <= upper``, optionally only ``within`` a mask.

    An unbounded side (``-inf``, ``inf``) is not compared (one pass over the volume less); the mask is
    combined in place.
    """
    if lower > upper:
        raise ValueError(f"threshold: lower ({lower}) is above upper ({upper})")
    if within is not None and within.shape != volume.shape:
        raise ValueError(f"threshold: 'within' has shape {within.shape}, the volume {volume.shape}")
    array = volume.array
    if lower != -np.inf:
        mask = array >= lower
        if upper != np.inf:
            mask &= array <= upper
    elif upper != np.inf:
        mask = array <= upper
    else:
        mask = ~np.isnan(array) if array.dtype.kind == "f" else np.ones(array.shape, dtype=bool)
    if within is not None:
        mask &= within
    return mask


def bone_mask(volume: Volume, *, cortex_hu: float = 180.0, dense_hu: float = 600.0, marrow_hu: float = 110.0,
              partial_volume_hu: float = 210.0, min_piece_ml: float = 0.2,
              body: NDArray[np.bool_] | None = None) -> NDArray[np.bool_]:
    """(K, J, I) mask of bone in a CT (cortex and marrow), without the table or contrast-filled vessels.

    1. Inside the body, voxels >= ``cortex_hu`` that connect to dense cortical bone (>= ``dense_hu``):
       a hysteresis threshold, so isolated contrast-enhanced vessels and organs stay out.
    2. Marrow: cavities enclosed by cortex in each slice (after closing gaps of about 5 mm) are
       filled, and voxels >= ``marrow_hu`` enclosed within 3 mm of bone (a 3-D closing) are added.
       A cavity voxel filled in its slice is kept only when its run of such voxels along the slice
       axis ends in bone (or the scan's end) on both sides: the spinal canal inside a closed
       vertebral arch, and a disc inside the ring of an endplate, are open along that axis and stay
       out (on ct-abdomen-20: 1,788 voxels less, 88% of them outside the reference's bones).
    3. The partial-volume rim: boundary voxels below ``partial_volume_hu`` (about half-way
       between cortex and soft tissue) are peeled off. Where the array's first or last slice (or
       its in-plane edge) cuts a bone there is no surface: marrow there stays (ct-3slice-labels'
       fatty vertebral marrow, 0-100 HU, was peeled in its first and last slices: vertebra Dice
       0.753, now 0.822; ct-abdomen-20 bone 0.786, now 0.795, 2,018 voxels more, all in its end
       slices).
    4. Pieces smaller than ``min_piece_ml`` are removed.
    """
    hu = volume.array
    spacing = volume.spacing_mm
    body = body_mask(volume) if body is None else body
    candidate = (hu >= cortex_hu) & body
    labels, _ = ndi.label(candidate, structure=np.ones((3, 3, 3), dtype=bool))
    seeded = np.unique(labels[candidate & (hu >= dense_hu)])
    bone = np.isin(labels, seeded[seeded > 0])
    in_slice_closed = ndi.binary_closing(bone, structure=ball(2.8, spacing, planar=True))
    solid = bone | in_slice_closed
    bone = fill_holes(in_slice_closed, per_slice=True) | fill_holes(bone, per_slice=True)
    marrow = close_mask(bone, 3.0, spacing_mm=spacing) & (hu >= marrow_hu)
    solid |= marrow
    bone = fill_holes(bone | marrow, per_slice=True)
    bone = solid | _closed_along_slices(bone & ~solid, solid)
    rim = bone & ~ndi.binary_erosion(bone, structure=ndi.generate_binary_structure(3, 1), border_value=1)
    bone &= ~(rim & (hu < partial_volume_hu))
    return remove_small(bone, min_ml=min_piece_ml, spacing_mm=spacing)


def _closed_along_slices(cavity: NDArray[np.bool_], walls: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """The voxels of ``cavity`` whose run of cavity voxels along k ends, on both sides, in ``walls``
    or at the first or last slice (both (K, J, I) masks)."""

    def reached(order: range) -> NDArray[np.bool_]:
        out = np.zeros_like(cavity)
        closed = np.ones(cavity.shape[1:], dtype=bool)  # beyond the grid counts as closed
        for k in order:
            out[k] = cavity[k] & closed
            closed = out[k] | walls[k]
        return out

    return reached(range(cavity.shape[0])) & reached(range(cavity.shape[0] - 1, -1, -1))


@dataclass(frozen=True)
class Preset:
    """A named CT segmentation preset: what it finds, its colour, and how."""

    name: str
    description: str
    color_rgb: tuple[float, float, float]
    make: Callable[[Volume], NDArray[np.bool_]]


def _range(lower: float, upper: float) -> Callable[[Volume], NDArray[np.bool_]]:
    return lambda volume: threshold(volume, lower=lower, upper=upper, within=body_mask(volume))


def _vessels(volume: Volume) -> NDArray[np.bool_]:
    body = body_mask(volume)
    vessels = threshold(volume, lower=110.0, upper=500.0, within=body)
    # Bone and its partial-volume rim are not vessel.
    bone = ndi.binary_dilation(bone_mask(volume, body=body), structure=ball(1.5, volume.spacing_mm))
    return vessels & ~bone


CT_PRESETS: dict[str, Preset] = {
    "bone": Preset("bone", "cortical and cancellous bone (hysteresis from dense cortex, marrow filled)",
                   (0.95, 0.92, 0.84), bone_mask),
    "soft_tissue": Preset("soft_tissue", "-100..200 HU inside the body", (0.85, 0.55, 0.5), _range(-100.0, 200.0)),
    "fat": Preset("fat", "-190..-30 HU inside the body", (0.95, 0.85, 0.45), _range(-190.0, -30.0)),
    "lung_air": Preset("lung_air", "-1000..-400 HU inside the body (lungs, airways, bowel gas)", (0.6, 0.8, 0.95),
                       _range(-1024.0, -400.0)),
    "vessels_contrast": Preset("vessels_contrast", "contrast-enhanced vessels: 110..500 HU inside the body, bone "
                               "excluded; keep the island under a point for one vessel", (0.85, 0.2, 0.2), _vessels),
    "body": Preset("body", "the patient's body (skin surface), without table and cushions", (0.9, 0.75, 0.65),
                   body_mask),
}


# A CT in Hounsfield units holds air (about -1000 HU) around or inside the patient; below this
# value lie only air and lung. MR, PET or unscaled images hold no such values.
AIR_HU = -500.0
MIN_AIR_FRACTION = 1e-3


def looks_like_hounsfield(volume: Volume) -> bool:
    """True when ``volume``'s values look like CT Hounsfield units: at least 0.1% of voxels are air (< -500)."""
    array = volume.array
    if array.size == 0 or array.dtype.kind == "u":
        return False
    return bool(np.count_nonzero(array < AIR_HU) >= MIN_AIR_FRACTION * array.size)


def preset_mask(volume: Volume, name: str) -> NDArray[np.bool_]:
    """The mask of CT preset ``name`` (see :data:`CT_PRESETS`).

    Refused (``ValueError``) for a volume of another modality, and for one of unknown modality
    (``"OT"``, e.g. read from NIfTI, which does not record it) whose values do not look like
    Hounsfield units: a CT threshold on an MR gives confident nonsense.
    """
    if name not in CT_PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(CT_PRESETS)}")
    if volume.modality not in ("CT", "OT"):
        raise ValueError(f"preset {name!r} needs a CT in Hounsfield units, got modality {volume.modality}")
    if volume.modality == "OT" and not looks_like_hounsfield(volume):
        lowest = float(volume.array.min()) if volume.array.size else float("nan")
        raise ValueError(f"preset {name!r} needs a CT in Hounsfield units; volume {volume.id or volume.name!r} has "
                         f"no recorded modality and no air below {AIR_HU:.0f} (lowest value {lowest:g}): not CT "
                         "(an MR?); use grow from seeds or --import instead")
    return CT_PRESETS[name].make(volume)
