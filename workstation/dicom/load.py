"""Loading a candidate series as volumes whose every voxel sits where the source pixel was."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from workstation.dicom.frames import Frame, FrameError
from workstation.dicom.pixels import NativeLayout, PlaneDecoder
from workstation.dicom.scan import SeriesCandidate
from workstation.dicom.stack import StackGeometry
from workstation.errors import InputError
from workstation.geometry import affine_from_geometry
from workstation.model.volume import SeriesIdentity, Volume
from workstation.progress import ProgressCallback, report


def _rescaled_stack(stack: StackGeometry, decode: PlaneDecoder, progress: ProgressCallback | None,
                    label: str) -> NDArray[np.generic]:
    """(n, rows, cols) modality values (HU for CT) in the stack's sorted order.

    Integer values (slope 1, integer intercepts) come as int16 when every value fits, else
    int32; any other rescale gives float32 ``stored * slope + intercept``, plane by plane.
    """
    frames = stack.frames
    slopes = np.array([f.rescale_slope for f in frames])
    intercepts = np.array([f.rescale_intercept for f in frames])
    integral = bool(np.all(slopes == 1.0) and np.all(intercepts == np.round(intercepts)))
    if integral:
        layouts = [decode.layout(f) for f in frames]
        first = layouts[0]
        if first is not None and all(_same_layout(first, other) for other in layouts[1:]):
            return _native_integral_stack(frames, first, [int(c) for c in intercepts], decode, progress, label)
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
            # The same arithmetic as plane.astype(float32) * slope + intercept, without temporaries.
            np.multiply(plane, np.float32(slopes[n]), out=out[n], dtype=np.float32, casting="unsafe")
            np.add(out[n], np.float32(intercepts[n]), out=out[n])
    report(progress, len(frames), len(frames), f"decoding {label}")
    assert out is not None
    if integral and out.size and out.min() >= -32768 and out.max() <= 32767:
        return out.astype(np.int16)
    return out


def _same_layout(a: NativeLayout | None, b: NativeLayout | None) -> bool:
    """Whether two planes' stored values have the same type, size and masking."""
    return a is not None and b is not None and (a.dtype, a.rows, a.columns, a.bits_stored) == (
        b.dtype, b.rows, b.columns, b.bits_stored)


def _native_integral_stack(frames: list[Frame], layout: NativeLayout, intercepts: list[int], decode: PlaneDecoder,
                           progress: ProgressCallback | None, label: str) -> NDArray[np.generic]:
    """Integer modality values of native planes, read from the files straight into the result.

    The same values and type as the general path of :func:`_rescaled_stack` (int16 when every
    ``stored + intercept`` fits, else int32) without its int32 intermediate: 16-bit planes are
    read into the int16 result itself and rescaled in place, one plane at a time while it is in
    the cache. Whether a plane fits int16 follows from the range ``BitsStored`` allows, or else
    from the plane's minimum and maximum. In int16, ``stored + intercept`` is computed modulo
    2**16 (any stored type, any intercept), which is exact whenever the true value fits.
    """
    n = len(frames)
    shape = (n, layout.rows, layout.columns)
    low, high = layout.value_range()
    in_place = layout.dtype.itemsize == 2 and layout.dtype.isnative
    out16 = np.empty(shape, dtype=np.int16)
    # 16-bit planes are read into the result; 8- and 32-bit ones into one plane-sized buffer.
    raw = out16.view(layout.dtype) if in_place else np.empty((1, *shape[1:]), dtype=layout.dtype)
    out32: NDArray[np.int32] | None = None  # once a plane does not fit int16
    message = f"decoding {label}"
    for k, frame in enumerate(frames):
        report(progress, k, n, message)
        plane = raw[k] if in_place else raw[0]
        decode.read_into(frame, plane)
        c = intercepts[k]
        if out32 is None:
            fits = low + c >= -32768 and high + c <= 32767
            if not fits:
                fits = int(plane.min()) + c >= -32768 and int(plane.max()) + c <= 32767
            if fits:
                c16 = np.int16((c + 32768) % 65536 - 32768)
                if in_place:  # out16[k] holds the stored bits: add modulo 2**16
                    if c16:
                        np.add(out16[k], c16, out=out16[k])
                else:
                    np.add(plane, c16, out=out16[k], dtype=np.int16, casting="unsafe")
                continue
            out32 = np.empty(shape, dtype=np.int32)
            out32[:k] = out16[:k]  # planes so far hold their exact values
        np.add(plane, np.int32(c), out=out32[k], dtype=np.int32, casting="unsafe")
    report(progress, n, n, message)
    if out32 is None:
        return out16
    if out32.min() >= -32768 and out32.max() <= 32767:  # wrapped 32-bit values, as the general path
        return out32.astype(np.int16)
    return out32


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
    # ceil: the grid's last voxel centre must reach the most shifted plane's last pixel centre.
    out_cols = int(np.ceil((offsets[:, 0].max() - x0) / row_mm - 1e-6)) + cols
    out_rows = int(np.ceil((offsets[:, 1].max() - y0) / col_mm - 1e-6)) + rows
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
