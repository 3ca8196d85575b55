"""Loading a candidate series as volumes whose every voxel sits where the source pixel was."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from workstation.dicom.frames import FrameError
from workstation.dicom.pixels import PlaneDecoder
from workstation.dicom.scan import SeriesCandidate
from workstation.dicom.stack import StackGeometry
from workstation.errors import InputError
from workstation.geometry import affine_from_geometry
from workstation.model.volume import SeriesIdentity, Volume
from workstation.progress import ProgressCallback, report


def _rescaled_stack(stack: StackGeometry, decode: PlaneDecoder, progress: ProgressCallback | None,
                    label: str) -> NDArray[np.generic]:
    """(n, rows, cols) modality values (HU for CT) in the stack's sorted order."""
    frames = stack.frames
    slopes = np.array([f.rescale_slope for f in frames])
    intercepts = np.array([f.rescale_intercept for f in frames])
    integral = bool(np.all(slopes == 1.0) and np.all(intercepts == np.round(intercepts)))
    out: NDArray[np.generic] | None = None
    for n, frame in enumerate(frames):
        report(progress, n, len(frames), f"decoding {label}")
        plane = decode(frame)
        if out is None:
            dtype = np.int32 if integral else np.float32
            out = np.empty((len(frames), *plane.shape), dtype=dtype)
        if integral:
            out[n] = plane
            if intercepts[n]:
                out[n] += int(intercepts[n])
        else:
            out[n] = plane.astype(np.float32) * np.float32(slopes[n]) + np.float32(intercepts[n])
    report(progress, len(frames), len(frames), f"decoding {label}")
    assert out is not None
    if integral and out.size and out.min() >= -32768 and out.max() <= 32767:
        return out.astype(np.int16)
    return out


def _resample(stack: StackGeometry, values: NDArray[np.generic], progress: ProgressCallback | None,
              label: str) -> tuple[NDArray[np.generic], NDArray[np.float64]]:
    """Resample a sheared and/or unevenly spaced stack onto an orthogonal regular grid.

    The grid's axes are the planes' row and column directions and their normal; it covers the
    bounding box of every source pixel. A voxel is interpolated along the normal between the two
    source planes around it, each sampled bilinearly at the voxel's in-plane position.
    Returns the array [k, j, i] and the origin (LPS mm) of voxel (0, 0, 0).
    """
    row_mm, col_mm = stack.pixel_spacing_mm[1], stack.pixel_spacing_mm[0]  # along row_dir, col_dir
    n, rows, cols = values.shape
    offsets = stack.offsets_mm
    x0, y0 = offsets[:, 0].min(), offsets[:, 1].min()
    out_cols = int(round((offsets[:, 0].max() - x0) / row_mm)) + cols
    out_rows = int(round((offsets[:, 1].max() - y0) / col_mm)) + rows
    k_count, spacing = stack.n_output_slices, stack.slice_spacing_mm
    fill = float(values.min())
    as_float = values.astype(np.float32, copy=False)
    out = np.empty((k_count, out_rows, out_cols), dtype=np.float32)
    z = stack.positions_mm[0] + spacing * np.arange(k_count)
    lower = np.clip(np.searchsorted(stack.positions_mm, z, side="right") - 1, 0, n - 2)
    for k in range(k_count):
        report(progress, k, k_count, f"resampling {label}")
        s = lower[k]
        span = stack.positions_mm[s + 1] - stack.positions_mm[s]
        w = float(np.clip((z[k] - stack.positions_mm[s]) / span, 0.0, 1.0))
        plane = np.zeros((out_rows, out_cols), dtype=np.float32)
        for source, weight in ((s, 1.0 - w), (s + 1, w)):
            if weight <= 1e-6:
                continue
            shift = ((y0 - offsets[source, 1]) / col_mm, (x0 - offsets[source, 0]) / row_mm)
            plane += weight * ndimage.affine_transform(as_float[source], np.ones(2), offset=shift,
                                                       output_shape=(out_rows, out_cols), order=1,
                                                       mode="constant", cval=fill)
        out[k] = plane
    report(progress, k_count, k_count, f"resampling {label}")
    first = stack.frames[0].position_lps
    origin = first + x0 * stack.row_dir + y0 * stack.col_dir  # type: ignore[operator]
    if np.issubdtype(values.dtype, np.integer):
        info = np.iinfo(values.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(values.dtype), origin
    return out, origin


def load_candidate(candidate: SeriesCandidate, *, progress: ProgressCallback | None = None) -> list[Volume]:
    """Decode a candidate series into one volume per stack.

    Each volume's ``provenance["warnings"]`` says what was corrected (tilt, gaps, uneven spacing).
    Raises :class:`InputError` naming the file when pixels cannot be decoded.
    """
    if not candidate.usable:
        raise InputError(f"series {candidate.number}: not a volume ({candidate.problem})")
    decode = PlaneDecoder()
    volumes = []
    for index, stack in enumerate(candidate.stacks):
        label = f"series {candidate.number}" + (f" volume {index + 1}" if len(candidate.stacks) > 1 else "")
        try:
            values = _rescaled_stack(stack, decode, progress, label)
        except FrameError as exc:
            raise InputError(str(exc)) from None
        direction = np.column_stack([stack.row_dir, stack.col_dir, stack.normal])
        spacing = [stack.pixel_spacing_mm[1], stack.pixel_spacing_mm[0], stack.slice_spacing_mm]
        if stack.needs_resampling:
            values, origin = _resample(stack, values, progress, label)
        else:
            origin = stack.frames[0].position_lps
        ds = stack.frames[0].dataset
        syntaxes = sorted({str(getattr(getattr(f.dataset, "file_meta", None), "TransferSyntaxUID", ""))
                           for f in stack.frames})
        provenance = {
            "source": {"kind": "dicom", "files": len({f.path for f in stack.frames}),
                       "planes": len(stack.frames), "transfer_syntaxes": syntaxes},
            "geometry": {
                "slice_spacing_from": "ImagePositionPatient along the slice normal",
                "positions_mm": [round(float(p), 4) for p in stack.positions_mm],
                "tilt_deg": round(stack.tilt_deg, 4), "uneven_spacing": stack.uneven,
                "missing_slices": sum(m[2] for m in stack.missing),
                "resampled": stack.needs_resampling,
                "slice_thickness_mm": float(ds.get("SliceThickness", 0) or 0) or None,
            },
            "values": "Hounsfield units" if candidate.modality == "CT" else "modality values (rescaled)",
            "warnings": stack.notes() + ([n for n in candidate.notes if "volumes at the same positions" in n]),
        }
        series = SeriesIdentity(
            study_instance_uid=candidate.study_instance_uid, series_instance_uid=candidate.series_instance_uid,
            frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "") or ""),
            series_number=candidate.series_number, series_description=candidate.description)
        name = f"{(candidate.modality or 'image').lower()}"
        if len(candidate.stacks) > 1:
            name += f"-{index + 1}"
        volumes.append(Volume(array=values, ijk_to_lps=affine_from_geometry(spacing, origin, direction),
                              modality=candidate.modality or "OT", name=name, series=series,
                              provenance=provenance))
    return volumes
