"""The patient's body: everything inside the skin, without the table, cushions or air."""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from segmentation.components import fill_slices_in_place, run_components
from segmentation.structuring import voxel_volume_mm3
from workstation.model.volume import Volume


@njit(cache=True, nogil=True)
def _extent(plane: NDArray[np.uint8], hj: int, hi: int) -> tuple[int, int, int, int]:  # pragma: no cover - compiled
    """``(j0, j1, i0, i1)``: the box of the set voxels of a slice widened by ``hj``, ``hi`` and clipped
    to the slice (``j0 == j1`` when the slice is empty)."""
    nj, ni = plane.shape
    j0, j1, i0, i1 = nj, 0, ni, 0
    for j in range(nj):
        first = -1
        for i in range(ni):
            if plane[j, i]:
                first = i
                break
        if first < 0:
            continue
        last = first
        for i in range(ni - 1, first, -1):
            if plane[j, i]:
                last = i
                break
        j0 = min(j0, j)
        j1 = j + 1
        i0 = min(i0, first)
        i1 = max(i1, last + 1)
    if j1 == 0:
        return 0, 0, 0, 0
    return max(j0 - hj, 0), min(j1 + hj, nj), max(i0 - hi, 0), min(i1 + hi, ni)


_ALL_BITS = np.uint64(0xFFFFFFFFFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _set_bits(words: NDArray[np.uint64], a: int, b: int) -> None:  # pragma: no cover - compiled
    """Set bits ``a`` to ``b - 1`` of a packed row (bit ``i % 64`` of word ``i // 64`` is column ``i``)."""
    if a >= b:
        return
    wa = a >> 6
    wb = (b - 1) >> 6
    low = _ALL_BITS << np.uint64(a & 63)
    high = _ALL_BITS >> np.uint64(63 - ((b - 1) & 63))
    if wa == wb:
        words[wa] |= low & high
        return
    words[wa] |= low
    for w in range(wa + 1, wb):
        words[w] = _ALL_BITS
    words[wb] |= high


@njit(cache=True, nogil=True, inline="always")
def _box_pass(src: NDArray[np.uint8], dst: NDArray[np.uint8], packed: NDArray[np.uint64], hj: int, hi: int,
              erode: bool, box: tuple[int, int, int, int]) -> None:  # pragma: no cover - compiled
    """2-D min (``erode``) or max filter of a 0/1 slice over a (2 hj + 1) x (2 hi + 1) box clipped to the slice.

    A box clipped to the slice equals scipy's ``mode="reflect"`` for min and max (reflected
    voxels lie inside the clipped box). Separable: along i run by run (a run ``[s, e)`` erodes to
    ``[s + hi, e - hi)`` and dilates to ``[s - hi, e + hi)``) into rows packed 64 voxels to a word
    (``packed``, (J, ceil(I / 64))), then along j as the AND (OR) of the 2 hj + 1 packed rows
    around each row, unpacked into ``dst``. Only the window ``box`` = (j0, j1, i0, i1) is computed,
    as if it were the slice: the caller's window holds the set voxels widened by the box's
    half-sides (or reaches the slice's border), so every box around a set voxel lies inside it
    and nothing outside it is set.
    """
    j0, j1, i0, i1 = box
    w0 = i0 >> 6
    w1 = (i1 + 63) >> 6
    for j in range(j0, j1):  # along i
        row = src[j]
        words = packed[j]
        for w in range(w0, w1):
            words[w] = 0
        i = i0
        while i < i1:
            if row[i] == 0:
                i += 1
                continue
            s = i
            while i < i1 and row[i] != 0:
                i += 1
            if erode:  # the box is clipped at the window's border (the slice's, where a run reaches it)
                _set_bits(words, s if s == i0 else s + hi, i if i == i1 else i - hi)
            else:
                _set_bits(words, max(s - hi, i0), min(i + hi, i1))
    for j in range(j0, j1):  # along j, 64 voxels at a time, then unpacked
        first = max(j - hj, j0)
        last = min(j + hj, j1 - 1)
        out = dst[j]
        for w in range(w0, w1):
            word = packed[first, w]
            for r in range(first + 1, last + 1):
                if erode:
                    word &= packed[r, w]
                else:
                    word |= packed[r, w]
            lo = max(i0, w << 6)
            hi_ = min(i1, (w + 1) << 6)
            if word == 0:
                for i in range(lo, hi_):
                    out[i] = 0
            elif word == _ALL_BITS:
                for i in range(lo, hi_):
                    out[i] = 1
            else:
                for i in range(lo, hi_):
                    out[i] = np.uint8((word >> np.uint64(i - (w << 6))) & np.uint64(1))


@njit(cache=True, parallel=True)
def _open_slices(dense: NDArray[np.uint8], hj: int, hi: int, boxes: NDArray[np.int64], n_chunks: int
                 ) -> NDArray[np.uint8]:  # pragma: no cover - compiled
    """Opening (min then max filter) of every slice with the clipped box of half-sides ``hj``, ``hi``.

    Fills ``boxes`` (K, 4) with each slice's window (:func:`_extent`); outside it the result is 0.
    Slices are independent: ``n_chunks`` runs of consecutive slices go to the threads (one parallel
    region, so a busy machine costs at most the serial time).
    """
    nk, nj, ni = dense.shape
    out = np.empty_like(dense)
    for chunk in prange(n_chunks):
        packed = np.empty((nj, (ni + 63) // 64), dtype=np.uint64)
        eroded = np.empty((nj, ni), dtype=np.uint8)
        for k in range(chunk * nk // n_chunks, (chunk + 1) * nk // n_chunks):
            box = _extent(dense[k], hj, hi)
            boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3] = box
            out[k] = 0
            _box_pass(dense[k], eroded, packed, hj, hi, True, box)
            _box_pass(eroded, out[k], packed, hj, hi, False, box)
    return out


@njit(cache=True, parallel=True)
def _regrow(body: NDArray[np.uint8], dense: NDArray[np.uint8], hj: int, hi: int, boxes: NDArray[np.int64],
            n_chunks: int) -> None:  # pragma: no cover - compiled
    """``dense = max_filter(body) & dense | body`` slice by slice (the box of :func:`_open_slices`), in place.

    ``boxes`` are the windows of ``dense``'s slices: the body lies in ``dense``'s windows less their
    margins (it is made of opened ``dense`` voxels and the holes they enclose), and outside its
    window ``dense`` is 0 already.
    """
    nk, nj, ni = body.shape
    for chunk in prange(n_chunks):
        packed = np.empty((nj, (ni + 63) // 64), dtype=np.uint64)
        grown = np.empty((nj, ni), dtype=np.uint8)
        for k in range(chunk * nk // n_chunks, (chunk + 1) * nk // n_chunks):
            box = (boxes[k, 0], boxes[k, 1], boxes[k, 2], boxes[k, 3])
            _box_pass(body[k], grown, packed, hj, hi, False, box)
            for j in range(box[0], box[1]):
                row = grown[j]
                inside = dense[k, j]
                kept = body[k, j]
                for i in range(box[2], box[3]):
                    inside[i] = (row[i] & inside[i]) | kept[i]


def body_mask(volume: Volume, *, threshold_hu: float = -400.0, detach_mm: float = 3.0,
              min_part_ml: float = 20.0) -> NDArray[np.bool_]:
    """(K, J, I) mask of the patient's body in a CT.

    Voxels above ``threshold_hu`` are opened in each slice with a square of half-side ``detach_mm``: this
    detaches the thin shells of the table and cushions. Every piece of at least ``min_part_ml``
    (the trunk and the arms; 26-connected) is kept, its holes filled per slice (lungs and bowel
    gas belong to the body), then grown back within the thresholded voxels.

    The steps run as numba kernels on uint8 slices (separable box filters, by runs along i and on
    rows packed in 64-bit words along j, within each slice's box of thresholded voxels; labelling
    of runs; per-slice hole filling) in two volume-sized arrays: the same mask as
    ``scipy.ndimage`` min/max filters, ``label`` and ``binary_fill_holes``, over ten times faster
    on a 512 x 512 x 300 CT.
    """
    if volume.modality not in ("CT", "OT"):
        raise ValueError(f"body_mask needs a CT in Hounsfield units, got modality {volume.modality}")
    dense = np.ascontiguousarray(volume.array > threshold_hu).view(np.uint8)
    half = np.maximum(np.round(detach_mm / np.asarray(volume.spacing_mm[:2])), 1).astype(int)
    hi, hj = int(half[0]), int(half[1])
    boxes = np.zeros((dense.shape[0], 4), dtype=np.int64)
    n_chunks = max(1, min(numba.get_num_threads(), dense.shape[0]))
    opened = _open_slices(dense, hj, hi, boxes, n_chunks)
    pieces = run_components(opened, connectivity=26)
    if pieces.count == 0:
        return np.zeros(volume.shape, dtype=bool)
    sizes_ml = pieces.sizes * voxel_volume_mm3(volume.spacing_mm) / 1000.0
    body = opened  # the opened slices' memory is free once labelled: no new volume-sized arrays below
    pieces.select_into(sizes_ml >= min(min_part_ml, sizes_ml.max()), body)
    fill_slices_in_place(body)
    _regrow(body, dense, hj, hi, boxes, n_chunks)
    return dense.view(np.bool_)
