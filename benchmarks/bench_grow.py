"""Benchmark: grow from seeds on a 512x512x100 CT, its incremental update, and peers on the same input.

The volume is the real 20-slice contrast CT of ``../shared/data/ct-abdomen-20`` tiled five times
along the slices (alternately mirrored, so the anatomy stays continuous) into 512x512x100 voxels
(0.98 x 0.98 x 2 mm); without the shared data a synthetic CT-like phantom of the same size is
used. Strokes are simulated from the reference labels as a user paints them (the test protocol:
6 one-slice discs of radius 2 px in liver, spleen and T12, 60 background discs around them and
3 in every other labelled structure, per 20-slice tile), so the region of interest is nearly the
whole volume; the air around the patient in it (two thirds of the voxels) is left out by
``grow_from_seeds`` (``skip_outside_air``).

Timed, median of ``--runs`` after a warm-up (numba compilation):

* ``grow_from_seeds`` on the whole volume;
* ``SeedGrower.update`` after adding one stroke (a 2-D stroke of 9x3 px in a structure, a new
  one each run, like a user correcting the result), checked to equal a full recomputation
  (INFO lines: our own recomputation is its reference, not a peer);
* peer 1, alternating with ours: ``skimage.segmentation.random_walker`` (beta 130, conjugate
  gradient with Jacobi preconditioner, tol 1e-3) on a crop of 20 x 160 x 160 voxels (slices 0-19,
  rows 180-339, columns 100-259: liver, IVC, T12) with denser strokes (eroded structures on
  every third slice) so that both methods are well posed; it is far too slow on the full volume;
* peer 2: SimpleITK ``ConfidenceConnected`` region growing of the liver from the liver strokes on
  the full volume (one structure, no competition: a simpler task, listed for scale);
* the preparation's filters on the full volume, alternating with their reference:
  ``segmentation.gaussian_filters`` (smoothing at 1 mm and gradient magnitude at 1.5 mm, truncated
  at 3 sigma, as grow-from-seeds uses them) against ``scipy.ndimage.gaussian_filter`` computing the
  same (checked: largest absolute difference).

Run from the project root::

    .venv/bin/python benchmarks/bench_grow.py [--runs 3]

Output lines (see DESIGN.md, "Benchmarks")::

    BENCH name=... ours_s=... peer=... peer_s=... ratio=... check=...
    INFO grow_512x512x100_s=... update_s=...
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TWIN_SHARED_DATA", ROOT.parent / "shared" / "data"))
TARGETS = {"liver": 5, "spleen": 1, "vertebrae_T12": 32}
BACKGROUND = 200
CROP = (slice(0, 20), slice(180, 340), slice(100, 260))

_IN_PLANE = np.zeros((3, 3, 3), bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def dice(a: NDArray[np.bool_], b: NDArray[np.bool_]) -> float:
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else 1.0


def timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = function()
    return time.perf_counter() - start, result


def paint_discs(seeds: NDArray[np.uint8], region: NDArray[np.bool_], count: int, value: int,
                rng: np.random.Generator) -> None:
    """``count`` discs of radius 2 px, one slice thick, at random points of ``region``."""
    points = np.argwhere(region)
    dj, di = np.mgrid[-2:3, -2:3]
    disc = dj**2 + di**2 <= 4
    for k, j, i in points[rng.choice(len(points), size=count, replace=False)]:
        jj, ii = j + dj[disc], i + di[disc]
        keep = (jj >= 0) & (jj < seeds.shape[1]) & (ii >= 0) & (ii < seeds.shape[2])
        seeds[k, jj[keep], ii[keep]] = value


def simulated_strokes(reference: NDArray[np.integer], seed: int = 7) -> NDArray[np.uint8]:
    """The test protocol's strokes on one 20-slice tile (see tests/segmentation/test_grow_from_seeds.py)."""
    rng = np.random.default_rng(seed)
    seeds = np.zeros(reference.shape, np.uint8)
    targets = tuple(TARGETS.values())
    for target in targets:
        inside = ndimage.binary_erosion(reference == target, structure=_IN_PLANE, iterations=6)
        paint_discs(seeds, inside, 6, target, rng)
    near = ndimage.binary_dilation(np.isin(reference, targets), structure=_IN_PLANE, iterations=4)
    paint_discs(seeds, ndimage.binary_erosion(~near, structure=_IN_PLANE, iterations=4), 60, BACKGROUND, rng)
    for other in np.unique(reference):
        if other == 0 or other in targets:
            continue
        inside = ndimage.binary_erosion(reference == other, structure=_IN_PLANE, iterations=2)
        if inside.sum() > 50:
            paint_discs(seeds, inside, 3, BACKGROUND, rng)
    return seeds


def dense_strokes(reference: NDArray[np.integer]) -> NDArray[np.uint8]:
    """Eroded structures and background on every third slice (for the random-walker comparison)."""
    seeds = np.zeros(reference.shape, np.uint8)
    targets = tuple(TARGETS.values())
    near = ndimage.binary_dilation(np.isin(reference, targets), structure=_IN_PLANE, iterations=4)
    outside = ndimage.binary_erosion(~near, structure=_IN_PLANE, iterations=4)
    for value, mask in [(t, reference == t) for t in targets] + [(BACKGROUND, None)]:
        region = outside if mask is None else ndimage.binary_erosion(mask, structure=_IN_PLANE, iterations=6)
        seeds[::3][region[::3]] = value
    return seeds


def tile(array: NDArray[Any], copies: int) -> NDArray[Any]:
    """``copies`` tiles along the slices, every other one mirrored."""
    return np.concatenate([array if n % 2 == 0 else array[::-1] for n in range(copies)])


def load_case(copies: int) -> tuple[Any, NDArray[np.integer], NDArray[np.uint8], Any, NDArray[np.integer], str]:
    """(big volume, its reference, its strokes, one-tile volume, one-tile reference, source)."""
    from workstation.model import Volume

    folder = SHARED / "ct-abdomen-20"
    if (folder / "dicom").is_dir():
        from workstation.dicom.load import load_candidate
        from workstation.dicom.scan import scan_path
        from workstation.io.volume_files import read_label_map

        ct = load_candidate(scan_path(folder / "dicom").default())[0]
        reference = read_label_map(folder / "reference" / "labels.nii.gz", reference=ct).array
        source = "ct-abdomen-20 tiled"
    else:
        ct, reference = synthetic_tile()
        source = "synthetic phantom (shared data absent)"
    seeds = simulated_strokes(reference)
    big = Volume.from_geometry(tile(ct.array, copies), spacing_mm=ct.spacing_mm, modality="CT")
    return big, tile(reference, copies), tile(seeds, copies), ct, reference, source


def synthetic_tile() -> tuple[Any, NDArray[np.uint8]]:
    """A 20x512x512 CT-like phantom with liver (5), spleen (1), T12 (32) and a few other structures."""
    from workstation.model import Volume

    rng = np.random.default_rng(3)
    k, j, i = np.mgrid[0:20, 0:512, 0:512].astype(np.float32)
    reference = np.zeros((20, 512, 512), np.uint8)
    body = ((j - 280) / 150) ** 2 + ((i - 256) / 210) ** 2 < 1
    reference[((j - 260) / 80) ** 2 + ((i - 170) / 75) ** 2 + ((k - 10) / 30) ** 2 < 1] = 5
    reference[((j - 300) / 45) ** 2 + ((i - 360) / 30) ** 2 + ((k - 10) / 20) ** 2 < 1] = 1
    reference[((j - 350) / 28) ** 2 + ((i - 256) / 28) ** 2 < 1] = 32
    reference[((j - 300) / 12) ** 2 + ((i - 230) / 12) ** 2 < 1] = 52
    hu = np.where(body, 40.0, -1000.0)
    hu[reference == 5], hu[reference == 1], hu[reference == 32], hu[reference == 52] = 100, 85, 300, 170
    hu += rng.normal(0, 15, hu.shape)
    return Volume.from_geometry(hu.astype(np.int16), spacing_mm=(0.977, 0.977, 2.0), modality="CT"), reference


def add_stroke(seeds: NDArray[np.uint8], reference: NDArray[np.integer], rng: np.random.Generator) -> NDArray[np.uint8]:
    """A copy of ``seeds`` with one more 9x3 px one-slice stroke inside a structure, away from others."""
    value = int(rng.choice([*TARGETS.values(), BACKGROUND]))
    mask = np.isin(reference, list(TARGETS.values()), invert=True) if value == BACKGROUND else reference == value
    free = ndimage.binary_erosion(mask, structure=_IN_PLANE, iterations=6)
    free &= ~ndimage.binary_dilation(seeds > 0, iterations=2)
    points = np.argwhere(free[:, :, 4:-4])
    k, j, i = points[rng.integers(len(points))]
    out = seeds.copy()
    out[k, j - 1:j + 2, i:i + 9] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each measurement (median reported)")
    parser.add_argument("--tiles", type=int, default=5, help="20-slice tiles stacked (5 -> 100 slices)")
    args = parser.parse_args()

    import SimpleITK as sitk
    from skimage.segmentation import random_walker

    from segmentation.grow_from_seeds import SeedGrower, grow_from_seeds
    from workstation.model import Volume

    big, reference, seeds, one, one_reference, source = load_case(args.tiles)
    name = "x".join(str(n) for n in big.size_ijk)
    print(f"volume {name} ({source}), spacing {np.round(big.spacing_mm, 3).tolist()} mm, "
          f"{int((seeds > 0).sum())} seed voxels")

    # --- ours: full computation ------------------------------------------------------------
    def grow() -> NDArray[np.integer]:
        return grow_from_seeds(big, seeds, background_value=BACKGROUND)

    _, labels = timed(grow)  # warm-up: numba compilation (cached on disk after the first run)
    grow_times = [timed(grow)[0] for _ in range(args.runs)]
    grow_s = statistics.median(grow_times)
    quality = " ".join(f"{n}={dice(labels == v, reference == v):.3f}" for n, v in TARGETS.items())
    print(f"grow runs: {' '.join(f'{t:.2f}' for t in grow_times)} s; Dice vs reference: {quality}")

    # --- ours: incremental update after one stroke ---------------------------------------------
    rng = np.random.default_rng(1)
    grower = SeedGrower(big)
    grower.update(seeds)
    current = seeds
    update_times, kinds = [], []
    for _ in range(args.runs + 1):  # the first is a warm-up of the update kernels
        current = add_stroke(current, reference, rng)
        seconds, updated = timed(lambda s=current: grower.update(s))
        update_times.append(seconds)
        kinds.append(grower.last_update_was_incremental)
    update_s = statistics.median(update_times[1:])
    exact = np.array_equal(updated, SeedGrower(big).update(current))
    print(f"update runs: {' '.join(f'{t:.3f}' for t in update_times[1:])} s (incremental: {kinds[1:]}), "
          f"equal to a recomputation: {exact}")

    # --- peer 1: random walker on a crop, alternating ----------------------------------------------
    crop_volume = Volume.from_geometry(one.array[CROP], spacing_mm=one.spacing_mm, modality="CT")
    crop_reference = one_reference[CROP]
    crop_seeds = dense_strokes(crop_reference)
    present = np.unique(crop_seeds[crop_seeds > 0])
    consecutive = np.zeros(256, np.int32)
    consecutive[present] = np.arange(1, present.size + 1)
    data = np.clip(crop_volume.array.astype(np.float32), -200, 400)
    data = (data - data.min()) / (data.max() - data.min())
    spacing_kji = tuple(float(s) for s in crop_volume.spacing_mm[::-1])

    def ours_crop() -> NDArray[np.integer]:
        return grow_from_seeds(crop_volume, crop_seeds, background_value=BACKGROUND)

    def peer_crop() -> NDArray[np.integer]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "probability outside [0, 1]" at tol 1e-3
            walked = random_walker(data, consecutive[crop_seeds], beta=130, mode="cg_j", tol=1e-3,
                                   spacing=spacing_kji)
        out = np.concatenate([[0], present]).astype(np.uint8)[walked]
        out[out == BACKGROUND] = 0
        return out

    ours_labels, peer_labels = ours_crop(), peer_crop()  # warm-up
    ours_times, peer_times = [], []
    for run in range(args.runs):
        order = [(ours_times, ours_crop), (peer_times, peer_crop)]
        for times, function in order if run % 2 == 0 else order[::-1]:
            times.append(timed(function)[0])
    crop_name = "x".join(str(s.stop - s.start) for s in CROP[::-1])
    agreement = ",".join(
        f"{n}_dice_ours_vs_peer={dice(ours_labels == v, peer_labels == v):.3f}"
        for n, v in TARGETS.items() if np.any(crop_reference == v))
    vs_reference = ",".join(
        f"{n}_ref_dice_ours={dice(ours_labels == v, crop_reference == v):.3f}"
        f"/peer={dice(peer_labels == v, crop_reference == v):.3f}"
        for n, v in TARGETS.items() if np.any(crop_reference == v))
    ours_s, peer_s = statistics.median(ours_times), statistics.median(peer_times)
    print(f"crop {crop_name} (slices 0-19, rows 180-339, columns 100-259 of one tile); "
          f"ours {' '.join(f'{t:.3f}' for t in ours_times)} s, peer {' '.join(f'{t:.2f}' for t in peer_times)} s")

    # --- peer 2: SimpleITK confidence-connected region growing of the liver, full volume ------------------
    image = sitk.GetImageFromArray(big.array)
    image.SetSpacing(tuple(float(s) for s in big.spacing_mm))
    liver_seeds = [tuple(int(x) for x in p[::-1]) for p in np.argwhere(seeds == TARGETS["liver"])]

    def sitk_liver() -> NDArray[np.bool_]:
        grown = sitk.ConfidenceConnected(image, seedList=liver_seeds, numberOfIterations=3, multiplier=2.5,
                                         initialNeighborhoodRadius=1, replaceValue=1)
        return sitk.GetArrayViewFromImage(grown) > 0

    sitk_mask = sitk_liver()  # warm-up
    sitk_times = [timed(sitk_liver)[0] for _ in range(args.runs)]
    sitk_s = statistics.median(sitk_times)
    liver, ours_liver = reference == TARGETS["liver"], labels == TARGETS["liver"]
    sitk_check = (f"liver_dice_ours_vs_peer={dice(ours_liver, sitk_mask):.3f},"
                  f"liver_ref_dice_ours={dice(ours_liver, liver):.3f}/peer={dice(sitk_mask, liver):.3f}")

    # --- the preparation's filters vs scipy.ndimage, alternating ---------------------------------------
    from segmentation.gaussian_filters import gaussian_filter, gradient_magnitude

    spacing = np.asarray(big.spacing_mm, dtype=float)[::-1]
    image32 = big.array.astype(np.float32)

    def ours_filters() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        return (gaussian_filter(image32, 1.0 / spacing, truncate=3.0),
                gradient_magnitude(image32, 1.5 / spacing, spacing, truncate=3.0))

    def scipy_filters() -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        smooth = ndimage.gaussian_filter(image32, 1.0 / spacing, mode="nearest", truncate=3.0)
        squared = np.zeros(image32.shape, np.float32)
        for axis in range(3):
            order = [0, 0, 0]
            order[axis] = 1
            derivative = ndimage.gaussian_filter(image32, 1.5 / spacing, order=order, mode="nearest", truncate=3.0)
            derivative /= np.float32(spacing[axis])
            squared += derivative * derivative
        return smooth, np.sqrt(squared)

    ours_out, scipy_out = ours_filters(), scipy_filters()  # warm-up
    filter_difference = max(float(np.abs(a - b).max()) for a, b in zip(ours_out, scipy_out, strict=True))
    del ours_out, scipy_out
    ours_filter_times, scipy_filter_times = [], []
    for run in range(args.runs):
        order = [(ours_filter_times, ours_filters), (scipy_filter_times, scipy_filters)]
        for times, function in order if run % 2 == 0 else order[::-1]:
            times.append(timed(function)[0])
    ours_filter_s, scipy_filter_s = statistics.median(ours_filter_times), statistics.median(scipy_filter_times)

    print(f"INFO grow_{name}_s={grow_s:.3f} update_s={update_s:.3f}")
    print(f"INFO update_vs_recompute speedup={grow_s / update_s:.1f} equal_to_recomputation={exact}")
    print(f"BENCH name=grow_crop_{crop_name} ours_s={ours_s:.3f} peer=skimage.random_walker peer_s={peer_s:.3f} "
          f"ratio={peer_s / ours_s:.1f} check={agreement},{vs_reference}")
    print(f"BENCH name=grow_{name}_vs_liver_region_growing ours_s={grow_s:.3f} peer=SimpleITK.ConfidenceConnected "
          f"peer_s={sitk_s:.3f} ratio={sitk_s / grow_s:.2f} check={sitk_check}")
    print(f"BENCH name=grow_filters_{name} ours_s={ours_filter_s:.3f} peer=scipy.ndimage.gaussian_filter "
          f"peer_s={scipy_filter_s:.3f} ratio={scipy_filter_s / ours_filter_s:.1f} "
          f"check=max_abs_difference={filter_difference:.3g}")


if __name__ == "__main__":
    main()
