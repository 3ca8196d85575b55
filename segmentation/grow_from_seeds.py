"""Multi-label grow-from-seeds: a few painted strokes per structure, the rest filled by competition.

The method is the geodesic competition of Fast GrowCut (Zhu et al. 2014), the algorithm behind
3D Slicer's "Grow from seeds": shortest paths grow from all seeds at once over the voxel graph of
a region of interest (ROI) around the seeds, and every voxel takes the label of the seed that
reaches it most cheaply. Each connected stroke of one label is a *source* with its own reference
intensity ``mu_s`` (median) and spread ``sigma_s`` (standard deviation, at least ``spread_floor``
times the noise level), and a step of its front from voxel ``p`` to the neighbour ``q`` costs

    w_s(p, q) = distance_weight * |pq|_mm
                + edge_weight * ((f(q) - f(p)) / noise_pq) ** 2
                + region_weight * ((f(q) - mu_s) / sigma_s) ** 2

where ``f`` is the intensity after a light Gaussian smoothing (``smoothing_mm``), ``|pq|_mm`` the
distance between the voxel centres (anisotropic spacing is respected) and ``noise_pq`` the
noise level of the ROI along that direction. The edge term alone is Fast GrowCut; the region term
stops a stroke in a vessel or a muscle from flooding an organ of a similar but different
intensity, which sparse strokes otherwise cannot prevent.

Costs are quantised to integers, so the paths are computed exactly by Dijkstra's algorithm with a
bucket queue (Dial's algorithm, O(1) per operation) in numba kernels; ties go to the source that
comes first (by label value, then by position). The result is the unique consistent labelling
(every voxel holds the cheapest offer of its neighbours), independent of visiting order. A
:class:`SeedGrower` session keeps its maps: when strokes are only added, the new strokes' fronts
are grown, the voxels whose paths they cut are re-grown, and the result is identical to a
recomputation from scratch at a fraction of the cost.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from llvmlite import ir
from llvmlite.binding import llvm_version_info
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic
from numpy.typing import NDArray
from scipy import ndimage

from segmentation.union_find import find, union
from workstation.model import Volume
from workstation.progress import ProgressCallback, report

__all__ = ["SeedGrower", "grow_from_seeds"]

# Cost units per unit of w; w is rounded to an integer >= 1 and capped at _MAX_COST units
# (any larger step is an edge either way).
_QUANTUM = 4.0
_MAX_COST = 1000.0
_MAX_STEP = int(_QUANTUM * _MAX_COST)
_N_BUCKETS = 1 << int(math.ceil(math.log2(_MAX_STEP + 2)))  # > every step: Dial's circular buckets
_BLOCK = 256  # queue entries per block of a bucket
_INF = (1 << 31) - 1
_MAX_SOURCES = (1 << 15) - 1
_CHUNK = 1_000_000  # voxels finalised per kernel call between progress reports
_PREFETCH = 8  # queue entries ahead whose voxels are prefetched (memory latency dominates)
_MAX_ROUNDS = 64  # invalidate/re-grow rounds of an update before falling back to a recomputation

# One int64 word per voxel of the padded ROI, so that a neighbour costs a single memory access:
#   bits 32..62 path cost (_INF = not reached), bits 17..31 source (1..32767, 0 = none),
#   bit 16 "finalised", bits 0..15 the quantised intensity.
# ``word >> 17`` is the key (cost, source) whose order is the competition rule: the cheaper path
# wins and, at equal cost, the source that comes first. The one-voxel border of the padded ROI
# has the word 0 (cost 0, no source): it is never entered.
_FIN = 1 << 16
_FEAT = (1 << 16) - 1
_SRC = (1 << 15) - 1


# The intrinsic is overloaded on the pointer type: "p0" with opaque pointers (LLVM >= 15).
_PREFETCH_INTRINSIC = "llvm.prefetch.p0" if llvm_version_info >= (15,) else "llvm.prefetch.p0i8"


@intrinsic
def _prefetch(typingctx, array, index):  # type: ignore[no-untyped-def]
    """``llvm.prefetch`` of ``array[index]`` (1-D contiguous array, no bounds check)."""
    signature = types.void(array, index)

    def codegen(context, builder, sig, args):  # type: ignore[no-untyped-def]
        array_type = sig.args[0]
        ary = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer2(
            context, builder, data=ary.data, shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides), layout=array_type.layout, inds=[args[1]],
            wraparound=False, boundscheck=False)
        byte_pointer = builder.bitcast(pointer, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer.type, i32, i32, i32]), _PREFETCH_INTRINSIC)
        builder.call(function, [byte_pointer, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return signature, codegen


@njit(cache=True, nogil=True, inline="always")
def _step(
    f_from: int, f_to: int, n: int, s: int, base_cost: NDArray[np.float64], edge_gain: NDArray[np.float64],
    ref: NDArray[np.float64], region_gain: NDArray[np.float64], max_step: int,
) -> int:
    """Quantised cost of a step of source ``s``'s front along neighbour ``n``, between two intensities."""
    d = float(f_to - f_from)
    r = float(f_to) - ref[s]
    c = base_cost[n] + edge_gain[n] * d * d + region_gain[s] * r * r
    return max_step if c >= max_step else max(1, int(c + 0.5))


@njit(cache=True, nogil=True)
def _push(
    u: int,
    bucket: int,
    bhead: NDArray[np.int32],
    btail: NDArray[np.int32],
    pool: NDArray[np.int32],
    bnext: NDArray[np.int32],
    bstart: NDArray[np.int32],
    bfill: NDArray[np.int32],
    free: int,
    used: int,
) -> tuple[int, int]:
    """Append voxel ``u`` to a bucket (a FIFO list of blocks); returns the new ``(free, used)``."""
    tail = btail[bucket]
    if tail == -1 or bfill[tail] == pool.shape[1]:
        if free != -1:
            block = free
            free = bnext[block]
        else:
            block = used
            used += 1
        bnext[block] = -1
        bfill[block] = 0
        bstart[block] = 0
        if tail == -1:
            bhead[bucket] = block
        else:
            bnext[tail] = block
        btail[bucket] = block
        tail = block
    pool[tail, bfill[tail]] = u
    bfill[tail] += 1
    return free, used


@njit(cache=True, nogil=True)
def _grow_kernel(
    word: NDArray[np.int64],
    bhead: NDArray[np.int32],
    btail: NDArray[np.int32],
    pool: NDArray[np.int32],
    bnext: NDArray[np.int32],
    bstart: NDArray[np.int32],
    bfill: NDArray[np.int32],
    qs: NDArray[np.int64],
    pend_v: NDArray[np.int64],
    pend_d: NDArray[np.int64],
    offsets: NDArray[np.int64],
    base_cost: NDArray[np.float64],
    edge_gain: NDArray[np.float64],
    ref: NDArray[np.float64],
    region_gain: NDArray[np.float64],
    max_step: int,
    max_pops: int,
    log: NDArray[np.int64],
) -> tuple[int, NDArray[np.int64]]:
    """Dijkstra with source competition on the padded flat ROI (Dial's bucket queue).

    ``qs`` = [current cost, queued entries, free block list, blocks used, status, next pending,
    log length]. Voxels ``pend_v`` (sorted by their cost ``pend_d``) join the queue when the
    current cost reaches theirs. The kernel stops when nothing is left, after ``max_pops``
    finalised voxels (so the caller can report progress), when the block pool may run short
    (status 2: grow it and call again) or before a cost would overflow (status 1). When ``log`` is
    not empty, voxels that were reached before and change source are appended to it (it grows
    as needed and is returned). Queue entries are never removed: an entry whose voxel got cheaper
    since is skipped when popped.
    """
    mask = bhead.size - 1
    n_blocks, block_size = pool.shape
    n_off = offsets.size
    limit = _INF - max_step - 1
    logging = log.size > 0
    cur = qs[0]
    count = qs[1]
    free = qs[2]
    used = qs[3]
    pp = qs[5]
    n_log = qs[6]
    n_pend = pend_v.size
    qs[4] = 0
    pops = 0
    while pops < max_pops:
        if free == -1 and n_blocks - used <= n_off + 1:
            qs[4] = 2
            break
        if pp < n_pend and pend_d[pp] <= cur:
            v = pend_v[pp]
            d = pend_d[pp]
            pp += 1
            wv = word[v]
            if (wv >> 32) == d and (wv & _FIN) == 0:
                free, used = _push(v, d & mask, bhead, btail, pool, bnext, bstart, bfill, free, used)
                count += 1
            continue
        if count == 0:
            if pp >= n_pend:
                break
            cur = pend_d[pp]
            continue
        b = cur & mask
        block = bhead[b]
        if block == -1:
            cur += 1
            continue
        start = bstart[block]
        v = pool[block, start]
        if start + _PREFETCH < bfill[block]:
            ahead = pool[block, start + _PREFETCH]
            _prefetch(word, ahead)
            for n in range(n_off):
                _prefetch(word, ahead + offsets[n])
        start += 1
        bstart[block] = start
        if start == bfill[block] and (start == block_size or btail[b] == block):
            nxt = bnext[block]
            bhead[b] = nxt
            if nxt == -1:
                btail[b] = -1
            bnext[block] = free
            free = block
        count -= 1
        wv = word[v]
        if (wv >> 32) != cur or (wv & _FIN) != 0:
            continue  # stale entry, or a duplicate of a voxel already finalised at this cost
        if cur > limit:
            qs[4] = 1
            break
        wv |= _FIN
        word[v] = wv
        pops += 1
        sv = (wv >> 17) & _SRC
        fv = wv & _FEAT
        for n in range(n_off):
            u = v + offsets[n]
            wu = word[u]
            du = wu >> 32
            if du <= cur:  # every step costs >= 1: no improvement possible (also the border)
                continue
            fu = wu & _FEAT
            nd = cur + _step(fv, fu, n, sv, base_cost, edge_gain, ref, region_gain, max_step)
            key = (nd << 15) | sv
            if key < (wu >> 17):
                word[u] = (key << 17) | fu
                # A cheaper cost needs a queue entry; so does a better source at equal cost for a
                # voxel finalised earlier (update). Otherwise the voxel is already queued.
                if nd < du or (wu & _FIN) != 0:
                    free, used = _push(u, nd & mask, bhead, btail, pool, bnext, bstart, bfill, free, used)
                    count += 1
                # Only a change of source can leave a neighbour unsupported (same source and
                # lower cost improves it too): log those for the repair of an update.
                if logging and du != _INF and ((wu >> 17) & _SRC) != sv:
                    if n_log == log.size:
                        bigger = np.empty(2 * log.size, dtype=np.int64)
                        bigger[:n_log] = log
                        log = bigger
                    log[n_log] = u
                    n_log += 1
    qs[0] = cur
    qs[1] = count
    qs[2] = free
    qs[3] = used
    qs[5] = pp
    qs[6] = n_log
    return pops, log


@njit(cache=True, nogil=True)
def _best_offer(
    word: NDArray[np.int64], x: int, offsets: NDArray[np.int64], base_cost: NDArray[np.float64],
    edge_gain: NDArray[np.float64], ref: NDArray[np.float64], region_gain: NDArray[np.float64], max_step: int,
) -> int:
    """Smallest key ``(cost << 15) | source`` that the reached neighbours of ``x`` offer it (or _INF << 15)."""
    best = _INF << 15
    fx = word[x] & _FEAT
    for n in range(offsets.size):
        wu = word[x + offsets[n]]
        du = wu >> 32
        su = (wu >> 17) & _SRC
        if su == 0 or du == _INF:  # border, or not reached
            continue
        # neighbour steps are symmetric (same length and noise both ways), so n serves u -> x too
        key = ((du + _step(wu & _FEAT, fx, n, su, base_cost, edge_gain, ref, region_gain, max_step)) << 15) | su
        if key < best:
            best = key
    return best


@njit(cache=True, nogil=True)
def _invalidate_kernel(
    word: NDArray[np.int64], changed: NDArray[np.int64], n_changed: int, offsets: NDArray[np.int64],
    base_cost: NDArray[np.float64], edge_gain: NDArray[np.float64], ref: NDArray[np.float64],
    region_gain: NDArray[np.float64], max_step: int,
) -> NDArray[np.int64]:
    """Reset to "not reached" every voxel whose path went through a voxel that changed source.

    A voxel is kept while a neighbour offers exactly its key. Resetting only removes offers, so a
    voxel found without one is reset at once and its neighbours are checked again; the order of
    the checks does not matter. Returns the reset voxels.
    """
    n_off = offsets.size
    stack = np.empty(max(1024, n_off * n_changed), dtype=np.int64)
    size = 0
    for c in range(n_changed):
        v = changed[c]
        for n in range(n_off):
            stack[size] = v + offsets[n]
            size += 1
    out = np.empty(1024, dtype=np.int64)
    n_out = 0
    while size > 0:
        size -= 1
        x = stack[size]
        wx = word[x]
        dx = wx >> 32
        if dx == 0 or dx == _INF:  # border, seed or already reset
            continue
        if _best_offer(word, x, offsets, base_cost, edge_gain, ref, region_gain, max_step) == (wx >> 17):
            continue
        word[x] = (np.int64(_INF) << 32) | (wx & _FEAT)
        if n_out == out.size:
            out = np.concatenate((out, np.empty(out.size, dtype=np.int64)))
        out[n_out] = x
        n_out += 1
        if size + n_off > stack.size:
            stack = np.concatenate((stack, np.empty(stack.size, dtype=np.int64)))
        for n in range(n_off):
            stack[size] = x + offsets[n]
            size += 1
    return out[:n_out]


@njit(cache=True, nogil=True)
def _reoffer_kernel(
    word: NDArray[np.int64], reset: NDArray[np.int64], offsets: NDArray[np.int64], base_cost: NDArray[np.float64],
    edge_gain: NDArray[np.float64], ref: NDArray[np.float64], region_gain: NDArray[np.float64], max_step: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Give every reset voxel the best offer of its reached neighbours; returns them with their costs."""
    voxels = np.empty(reset.size, dtype=np.int64)
    costs = np.empty(reset.size, dtype=np.int64)
    n = 0
    for x in reset:
        best = _best_offer(word, x, offsets, base_cost, edge_gain, ref, region_gain, max_step)
        if (best >> 15) < _INF:
            word[x] = (best << 17) | (word[x] & _FEAT)
            voxels[n] = x
            costs[n] = best >> 15
            n += 1
    return voxels[:n], costs[:n]


@njit(cache=True, nogil=True)
def _remap_sources(word: NDArray[np.int64], remap: NDArray[np.int64]) -> None:
    """Renumber the sources of all voxels (``remap[old] = new``), keeping costs and flags."""
    for v in range(word.size):
        w = word[v]
        s = (w >> 17) & _SRC
        if s != 0:
            word[v] = (w & ~(np.int64(_SRC) << 17)) | (remap[s] << 17)


@njit(cache=True, nogil=True)
def _components_kernel(
    flat: NDArray[np.int64], labels: NDArray[np.int64], shape: NDArray[np.int64]
) -> NDArray[np.int64]:
    """26-connected components of equal-label seed voxels.

    ``flat`` are the sorted flat indices (C order in ``shape``) of the seed voxels and ``labels``
    their values. Returns for every seed voxel the position of the first voxel of its component.
    """
    nj, ni = shape[1], shape[2]
    parent = np.arange(flat.size)
    for a in range(flat.size):
        v = flat[a]
        k = v // (nj * ni)
        j = (v // ni) % nj
        i = v % ni
        for dk in range(-1, 1):
            for dj in range(-1, 2):
                for di in range(-1, 2):
                    if dk == 0 and (dj > 0 or (dj == 0 and di >= 0)):
                        continue  # only the 13 neighbours that come earlier in C order
                    kk, jj, ii = k + dk, j + dj, i + di
                    if kk < 0 or jj < 0 or jj >= nj or ii < 0 or ii >= ni:
                        continue
                    u = (kk * nj + jj) * ni + ii
                    b = np.searchsorted(flat, u)
                    if b < flat.size and flat[b] == u and labels[b] == labels[a]:
                        union(parent, a, b)
    for a in range(flat.size):
        parent[a] = find(parent, a)
    return parent


@njit(cache=True, nogil=True)
def _write_labels(word: NDArray[np.int64], lut: NDArray[np.integer], out: NDArray[np.integer]) -> None:
    """``out[k, j, i] = lut[source of padded voxel (k + 1, j + 1, i + 1)]`` for the ROI view ``out``."""
    nk, nj, ni = out.shape
    sj = ni + 2
    sk = (nj + 2) * sj
    for k in range(nk):
        for j in range(nj):
            row = (k + 1) * sk + (j + 1) * sj + 1
            for i in range(ni):
                out[k, j, i] = lut[(word[row + i] >> 17) & _SRC]


@njit(cache=True, nogil=True)
def _fill_words(feat: NDArray[np.float32], low: float, per_unit: float, word: NDArray[np.int64]) -> None:
    """Unreached words of the padded ROI ``word`` holding the quantised intensities ``feat``."""
    nk, nj, ni = feat.shape
    unreached = np.int64(_INF) << 32
    for k in range(nk):
        for j in range(nj):
            for i in range(ni):
                word[k + 1, j + 1, i + 1] = unreached | int((feat[k, j, i] - low) * per_unit + 0.5)


class _Queue:
    """Dial's bucket queue: ``_N_BUCKETS`` circular buckets, each a FIFO list of pooled blocks."""

    def __init__(self, expected: int) -> None:
        n_blocks = max(64, expected // _BLOCK)
        self.bhead = np.full(_N_BUCKETS, -1, dtype=np.int32)
        self.btail = np.full(_N_BUCKETS, -1, dtype=np.int32)
        self.pool = np.empty((n_blocks, _BLOCK), dtype=np.int32)
        self.bnext = np.full(n_blocks, -1, dtype=np.int32)
        self.bstart = np.zeros(n_blocks, dtype=np.int32)
        self.bfill = np.zeros(n_blocks, dtype=np.int32)
        self.qs = np.array([0, 0, -1, 0, 0, 0, 0], dtype=np.int64)

    def grow(self) -> None:
        """Double the block pool (the kernels never allocate it)."""
        n_blocks = self.pool.shape[0]
        pool = np.empty((2 * n_blocks, _BLOCK), dtype=np.int32)
        pool[:n_blocks] = self.pool
        self.pool = pool
        self.bnext = np.concatenate([self.bnext, np.full(n_blocks, -1, dtype=np.int32)])
        self.bstart = np.concatenate([self.bstart, np.zeros(n_blocks, dtype=np.int32)])
        self.bfill = np.concatenate([self.bfill, np.zeros(n_blocks, dtype=np.int32)])

    def arrays(self) -> tuple[NDArray[np.int32], ...]:
        return self.bhead, self.btail, self.pool, self.bnext, self.bstart, self.bfill


@dataclass
class _Sources:
    """The strokes, in the order that breaks ties: by label value, then by first voxel (C order).

    Index 0 is "no source"; arrays are indexed by source number.
    """

    label: NDArray[np.int64]  # seed label value
    first: NDArray[np.int64]  # flat index (full grid) of the stroke's first voxel
    ref: NDArray[np.float64]  # reference intensity mu_s, quantised units
    region_gain: NDArray[np.float64]  # quantum * region_weight / sigma_s ** 2, quantised units


@dataclass
class _State:
    """Cost/source maps of one ROI, kept between updates of a :class:`SeedGrower`."""

    roi: tuple[slice, slice, slice]
    padded_shape: tuple[int, int, int]
    seeds: NDArray[np.integer]  # copy of the seeds the maps were computed from (full grid)
    sources: _Sources
    word: NDArray[np.int64]  # (padded ROI size,) packed cost | source | finalised | intensity
    queue: _Queue
    offsets: NDArray[np.int64]
    base_cost: NDArray[np.float64]
    edge_gain: NDArray[np.float64]
    noise: float  # mean noise level, quantised units
    per_unit: float  # quantised units per volume intensity unit


def _neighbourhood(
    connectivity: int, spacing_kji: NDArray[np.float64]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """(N, 3) ``[dk, dj, di]`` neighbour steps and their (N,) lengths in mm."""
    reach = {6: 1, 18: 2, 26: 3}[connectivity]
    steps = [(dk, dj, di) for dk in (-1, 0, 1) for dj in (-1, 0, 1) for di in (-1, 0, 1)
             if 0 < abs(dk) + abs(dj) + abs(di) <= reach]
    kji = np.array(steps, dtype=np.int64)
    return kji, np.sqrt(((kji * spacing_kji) ** 2).sum(axis=1))


def _roi(seeds: NDArray[np.integer], spacing_kji: NDArray[np.float64], margin_mm: float) -> tuple[slice, slice, slice]:
    """Bounding box of the nonzero seeds grown by ``margin_mm`` on every side, clipped to the grid."""
    margin = np.ceil(margin_mm / spacing_kji - 1e-9).astype(int)
    box = []
    for axis in range(3):
        hit = np.flatnonzero(seeds.any(axis=tuple(a for a in range(3) if a != axis)))
        lo, hi = int(hit[0]), int(hit[-1])
        box.append(slice(max(0, lo - margin[axis]), min(seeds.shape[axis], hi + margin[axis] + 1)))
    return tuple(box)  # type: ignore[return-value]


def _smoothed_roi(
    array: NDArray[np.generic], roi: tuple[slice, slice, slice], sigma_kji: NDArray[np.float64]
) -> NDArray[np.float32]:
    """The ROI of ``array`` as float32, Gaussian-smoothed with ``sigma_kji`` voxels.

    The filter reads a halo around the ROI so the values do not depend on where the ROI ends.
    """
    if not np.any(sigma_kji > 0):
        return np.asarray(array[roi], dtype=np.float32)
    halo = np.ceil(3.0 * sigma_kji).astype(int) + 1
    outer = tuple(slice(max(0, s.start - h), min(n, s.stop + h))
                  for s, h, n in zip(roi, halo, array.shape, strict=True))
    block = np.ascontiguousarray(array[outer])
    if not np.issubdtype(block.dtype, np.number) or block.dtype == np.float64:
        block = block.astype(np.float32)
    tmp = ndimage.gaussian_filter(block.astype(np.float32, copy=False), sigma=sigma_kji, mode="nearest", truncate=3.0)
    return tmp[tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(roi, outer, strict=True))]


def _noise_levels(feat: NDArray[np.float32]) -> NDArray[np.float64]:
    """(3,) noise level of ``feat`` along k, j, i: robust scale of neighbour differences.

    Exactly flat parts (padding, clipped air) are left out; the result is at least 1e-3 of the
    intensity range (noise-free images).
    """
    step = max(1, int(round((feat.size / 1_000_000) ** (1 / 3))))
    sample = feat[::step, ::step, ::step]
    spread = float(np.percentile(sample, 99.5) - np.percentile(sample, 0.5)) if sample.size else 0.0
    floor = max(1e-3 * spread, 1e-6)
    out = np.empty(3)
    for axis in range(3):
        if feat.shape[axis] < 2:
            out[axis] = floor
            continue
        index = [slice(None, None, step)] * 3
        index[axis] = slice(None)
        d = np.abs(np.diff(feat[tuple(index)], axis=axis)).ravel()
        d = d[d > 1e-6 * max(spread, 1e-12)]
        out[axis] = float(np.median(d)) * 1.4826 / math.sqrt(2.0) if d.size else 0.0
    return np.maximum(out, floor)


class SeedGrower:
    """An interactive grow-from-seeds session on one volume.

    Each :meth:`update` returns the labels for the given seeds. When the seeds only add strokes to
    those of the previous call (no seed erased or relabelled, no new stroke touching an old one of
    its label) and the ROI stays the same, the kept cost and source maps are updated instead of
    recomputed: the new strokes' fronts are grown and the voxels whose paths they cut re-grown.
    The labels are identical to those of a new computation.

    Parameters
    ----------
    volume : Volume
        The image (any modality; CT in HU), ``array`` of shape (K, J, I).
    roi_margin_mm : float
        The region computed is the bounding box of all seeds grown by this many mm on each side
        (clipped to the volume). Voxels outside it are labelled 0.
    connectivity : {6, 18, 26}
        Neighbours of a voxel: faces, faces + edges, or the full 3x3x3 cube.
    smoothing_mm : float
        Standard deviation in mm of the Gaussian applied to the intensities first (0 disables it).
    edge_weight : float
        Weight of the squared intensity step between neighbours, in units of the ROI's noise level.
    region_weight : float
        Weight of the squared difference between a voxel and the stroke's reference intensity, in
        units of the stroke's spread (0 gives plain Fast GrowCut).
    distance_weight : float
        Cost of one mm of path; larger values make strokes win the voxels close to them.
    spread_floor : float
        Lower bound of a stroke's intensity spread, in units of the ROI's noise level.
    """

    def __init__(
        self,
        volume: Volume,
        *,
        roi_margin_mm: float = 20.0,
        connectivity: int = 6,
        smoothing_mm: float = 1.0,
        edge_weight: float = 0.25,
        region_weight: float = 1.0,
        distance_weight: float = 0.3,
        spread_floor: float = 2.0,
    ) -> None:
        if connectivity not in (6, 18, 26):
            raise ValueError(f"connectivity must be 6, 18 or 26, got {connectivity}")
        for name, value in (("roi_margin_mm", roi_margin_mm), ("smoothing_mm", smoothing_mm),
                            ("edge_weight", edge_weight), ("region_weight", region_weight),
                            ("distance_weight", distance_weight)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not (math.isfinite(spread_floor) and spread_floor > 0):
            raise ValueError(f"spread_floor must be a finite number > 0, got {spread_floor}")
        self.volume = volume
        self.roi_margin_mm = float(roi_margin_mm)
        self.connectivity = int(connectivity)
        self.smoothing_mm = float(smoothing_mm)
        self.edge_weight = float(edge_weight)
        self.region_weight = float(region_weight)
        self.distance_weight = float(distance_weight)
        self.spread_floor = float(spread_floor)
        self._state: _State | None = None
        self.last_update_was_incremental = False

    def reset(self) -> None:
        """Forget the kept maps: the next :meth:`update` recomputes from scratch."""
        self._state = None

    def update(self, seeds: NDArray[np.integer], *, progress: ProgressCallback | None = None) -> NDArray[np.integer]:
        """Labels grown from ``seeds``.

        Parameters
        ----------
        seeds : (K, J, I) integer array
            Painted seed labels on the volume's grid, 0 where unknown; at least two distinct
            nonzero values. Not modified (a copy is kept for the next update).
        progress : callable, optional
            ``progress(done, total, message)``; returning ``False`` cancels with
            :class:`~workstation.errors.CancelledError` (the session then recomputes next time).

        Returns
        -------
        (K, J, I) array of the seeds' dtype
            Every ROI voxel holds the label of the stroke that reaches it most cheaply; voxels
            outside the ROI are 0.
        """
        seeds, _ = _checked_seeds(self.volume, seeds)
        spacing_kji = np.asarray(self.volume.spacing_mm, dtype=float)[::-1]
        roi = _roi(seeds, spacing_kji, self.roi_margin_mm)
        state, self._state = self._state, None  # stays None if this call fails or is cancelled
        self.last_update_was_incremental = False
        if state is not None and state.roi == roi and self._try_incremental(state, seeds, progress):
            self.last_update_was_incremental = True
        else:
            state = self._full(seeds, roi, spacing_kji, progress)
        self._state = state
        labels = self._labels(state, seeds.dtype)
        total = int(np.prod([s.stop - s.start for s in roi]))
        report(progress, total, total, "grow from seeds: done")
        return labels

    # -- full computation -------------------------------------------------------------------
    def _full(
        self,
        seeds: NDArray[np.integer],
        roi: tuple[slice, slice, slice],
        spacing_kji: NDArray[np.float64],
        progress: ProgressCallback | None,
    ) -> _State:
        report(progress, 0, int(np.prod([s.stop - s.start for s in roi])), "grow from seeds: preparing the region")
        feat = _smoothed_roi(self.volume.array, roi, self.smoothing_mm / spacing_kji)
        if not np.isfinite(feat).all():
            raise ValueError("grow_from_seeds: the volume has non-finite values (NaN or inf) in the region")
        low, high = float(feat.min()), float(feat.max())
        per_unit = _FEAT / (high - low) if high > low else 1.0
        noise_kji = _noise_levels(feat) * per_unit
        shape = tuple(n + 2 for n in feat.shape)
        word = np.zeros(shape, dtype=np.int64)  # the border stays 0
        _fill_words(feat, low, per_unit, word)
        del feat
        steps, lengths_mm = _neighbourhood(self.connectivity, spacing_kji)
        noise_n = np.sqrt((np.abs(steps) * noise_kji**2).sum(axis=1) / np.abs(steps).sum(axis=1))
        strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
        state = _State(
            roi=roi,
            padded_shape=shape,  # type: ignore[arg-type]
            seeds=seeds.copy(),
            sources=_Sources(*(np.zeros(1, dtype=t) for t in (np.int64, np.int64, np.float64, np.float64))),
            word=word.ravel(),
            queue=_Queue(word.size // 8),
            offsets=steps @ strides,
            base_cost=_QUANTUM * self.distance_weight * lengths_mm,
            edge_gain=_QUANTUM * self.edge_weight / noise_n**2,
            noise=float(np.sqrt(np.mean(noise_kji**2))),
            per_unit=per_unit,
        )
        local = np.nonzero(state.seeds[roi])
        flat, stroke = self._strokes(state, local)
        self._insert_sources(state, flat, stroke)
        _grow(state, state.queue, (flat, np.zeros(flat.size, dtype=np.int64)), log=False, progress=progress)
        return state

    # -- incremental update -----------------------------------------------------------------
    def _try_incremental(
        self, state: _State, seeds: NDArray[np.integer], progress: ProgressCallback | None
    ) -> bool:
        """Apply added strokes to the kept maps; False when a recomputation is needed instead."""
        roi = state.roi
        prev, new = state.seeds[roi], seeds[roi]
        changed = prev != new
        if np.any(prev[changed] != 0):
            return False  # a seed was erased or relabelled
        local = np.nonzero(changed)
        if local[0].size == 0:
            state.seeds = seeds.copy()
            return True
        if _touches_old_stroke(prev, new, local):
            return False  # the new voxels extend an existing stroke: its reference would change
        state.seeds = seeds.copy()
        flat, stroke = self._strokes(state, local)
        self._insert_sources(state, flat, stroke)
        grown = _grow(state, state.queue, (flat, np.zeros(flat.size, dtype=np.int64)), log=True, progress=progress)
        # the new seed voxels changed too: paths through them are cut
        return _repair(state, np.concatenate([flat, grown]), progress)

    # -- shared steps -----------------------------------------------------------------------
    def _strokes(
        self, state: _State, local: tuple[NDArray[np.intp], ...]
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Padded flat indices of the seed voxels at ROI indices ``local`` and their stroke ids.

        A stroke id is the position (in ``local``'s C order) of the stroke's first voxel.
        """
        roi_shape = tuple(s.stop - s.start for s in state.roi)
        flat_roi = np.ravel_multi_index(local, roi_shape).astype(np.int64)
        order = np.argsort(flat_roi, kind="stable")
        flat_roi = flat_roi[order]
        local = tuple(a[order] for a in local)
        values = state.seeds[state.roi][local].astype(np.int64)
        stroke = _components_kernel(flat_roi, values, np.array(roi_shape, dtype=np.int64))
        flat = np.ravel_multi_index(tuple(a + 1 for a in local), state.padded_shape).astype(np.int64)
        return flat, stroke

    def _insert_sources(self, state: _State, flat: NDArray[np.int64], stroke: NDArray[np.int64]) -> None:
        """Add the strokes as sources (renumbering the kept ones) and record each voxel's source in ``word``."""
        firsts, inverse = np.unique(stroke, return_inverse=True)
        feats = (state.word[flat] & _FEAT).astype(np.float64)
        counts = np.bincount(inverse)
        mean = np.bincount(inverse, feats) / counts
        spread = np.sqrt(np.maximum(np.bincount(inverse, feats**2) / counts - mean**2, 0.0))
        spread = np.maximum(spread, self.spread_floor * state.noise)
        by_stroke = np.argsort(inverse, kind="stable")
        ref = np.array([np.median(part) for part in np.split(feats[by_stroke], np.cumsum(counts)[:-1])])
        first_full = _full_index(flat[firsts], state.padded_shape, state.roi, self.volume.shape)
        label = _seed_values_at(state, flat[firsts])
        old = state.sources
        all_label = np.concatenate([old.label[1:], label])
        all_first = np.concatenate([old.first[1:], first_full])
        order = np.lexsort((all_first, all_label))
        n_old = old.label.size - 1
        if all_label.size > _MAX_SOURCES:
            raise ValueError(f"grow_from_seeds: at most {_MAX_SOURCES} separate strokes, got {all_label.size}")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(1, order.size + 1)
        if n_old and not np.array_equal(rank[:n_old], np.arange(1, n_old + 1)):
            remap = np.concatenate([[0], rank[:n_old]]).astype(np.int64)
            _remap_sources(state.word, remap)
        all_ref = np.concatenate([old.ref[1:], ref])
        all_gain = np.concatenate([old.region_gain[1:], _QUANTUM * self.region_weight / spread**2])
        state.sources = _Sources(
            label=np.concatenate([[0], all_label[order]]),
            first=np.concatenate([[0], all_first[order]]),
            ref=np.concatenate([[0.0], all_ref[order]]),
            region_gain=np.concatenate([[0.0], all_gain[order]]),
        )
        source_of_voxel = rank[n_old + inverse]
        state.word[flat] = (state.word[flat] & _FEAT) | (source_of_voxel << 17)  # cost 0, not finalised

    def _labels(self, state: _State, dtype: np.dtype) -> NDArray[np.integer]:
        lut = state.sources.label.astype(dtype)
        out = np.zeros(self.volume.shape, dtype=dtype)
        _write_labels(state.word, lut, out[state.roi])
        return out


def _grow(
    state: _State,
    queue: _Queue,
    pending: tuple[NDArray[np.int64], NDArray[np.int64]],
    *,
    log: bool,
    progress: ProgressCallback | None,
) -> NDArray[np.int64]:
    """Grow from the ``pending`` voxels (sorted by cost) until nothing is queued.

    Returns the voxels reached before that changed source, when ``log`` is set.
    """
    pend_v, pend_d = pending
    queue.qs[5] = 0
    queue.qs[6] = 0
    if pend_d.size:
        queue.qs[0] = pend_d[0]
    changes = np.empty(4096 if log else 0, dtype=np.int64)
    total = int(np.prod([n - 2 for n in state.padded_shape]))
    done = 0
    while True:
        report(progress, min(done, total), total, "grow from seeds")
        pops, changes = _grow_kernel(
            state.word, *queue.arrays(), queue.qs, pend_v, pend_d, state.offsets, state.base_cost, state.edge_gain,
            state.sources.ref, state.sources.region_gain, _MAX_STEP, _CHUNK, changes)
        done += pops
        if queue.qs[4] == 1:
            raise ValueError("grow_from_seeds: path costs overflow; use a smaller region")
        if queue.qs[4] == 2:
            queue.grow()
        elif queue.qs[1] == 0 and queue.qs[5] >= pend_v.size:
            break
    return changes[: queue.qs[6]]


def _repair(state: _State, changed: NDArray[np.int64], progress: ProgressCallback | None) -> bool:
    """Make the maps consistent after the keys of ``changed`` voxels dropped and their sources changed.

    Voxels whose path went through a changed voxel and that no neighbour supports any more are
    reset and grown again from their neighbours; repeated until nothing changes. False when that
    takes more than _MAX_ROUNDS rounds (the caller then recomputes).
    """
    args = (state.offsets, state.base_cost, state.edge_gain, state.sources.ref, state.sources.region_gain, _MAX_STEP)
    for _ in range(_MAX_ROUNDS):
        if changed.size == 0:
            return True
        reset = _invalidate_kernel(state.word, changed, changed.size, *args)
        if reset.size == 0:
            return True
        voxels, costs = _reoffer_kernel(state.word, reset, *args)
        order = np.argsort(costs, kind="stable")
        changed = _grow(state, state.queue, (voxels[order], costs[order]), log=True, progress=progress)
    return False


def _full_index(
    padded_flat: NDArray[np.int64], padded_shape: tuple[int, int, int], roi: tuple[slice, slice, slice],
    shape: tuple[int, int, int],
) -> NDArray[np.int64]:
    """Flat indices in the full grid of padded-ROI flat indices."""
    kji = np.unravel_index(padded_flat, padded_shape)
    return np.ravel_multi_index(tuple(a - 1 + s.start for a, s in zip(kji, roi, strict=True)), shape).astype(np.int64)


def _seed_values_at(state: _State, padded_flat: NDArray[np.int64]) -> NDArray[np.int64]:
    kji = np.unravel_index(padded_flat, state.padded_shape)
    return state.seeds[tuple(a - 1 + s.start for a, s in zip(kji, state.roi, strict=True))].astype(np.int64)


def _touches_old_stroke(
    prev: NDArray[np.integer], new: NDArray[np.integer], local: tuple[NDArray[np.intp], ...]
) -> bool:
    """True when a new seed voxel has an old seed voxel of the same label among its 26 neighbours."""
    shape = prev.shape
    values = new[local]
    for dk in (-1, 0, 1):
        for dj in (-1, 0, 1):
            for di in (-1, 0, 1):
                if dk == dj == di == 0:
                    continue
                k, j, i = local[0] + dk, local[1] + dj, local[2] + di
                inside = (k >= 0) & (k < shape[0]) & (j >= 0) & (j < shape[1]) & (i >= 0) & (i < shape[2])
                if np.any(prev[k[inside], j[inside], i[inside]] == values[inside]):
                    return True
    return False


def _checked_seeds(volume: Volume, seeds: NDArray[np.integer]) -> tuple[NDArray[np.integer], NDArray[np.int64]]:
    """``seeds`` as an array and its distinct nonzero labels (ascending), or ValueError."""
    seeds = np.asarray(seeds)
    if seeds.shape != volume.shape:
        raise ValueError(f"grow_from_seeds: seeds shape {seeds.shape} differs from the volume's {volume.shape}")
    if seeds.dtype == np.bool_ or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"grow_from_seeds: seeds must be an integer label array, got dtype {seeds.dtype}")
    if np.issubdtype(seeds.dtype, np.signedinteger) and seeds.min() < 0:
        raise ValueError("grow_from_seeds: seed labels must be >= 0 (0 = unknown); found negative values")
    values = np.unique(seeds[seeds != 0]).astype(np.int64)
    if values.size < 2:
        raise ValueError(f"grow_from_seeds: needs seeds of at least 2 distinct labels, got {values.tolist()}")
    return seeds, values


def grow_from_seeds(
    volume: Volume,
    seeds: NDArray[np.integer],
    *,
    background_value: int | None = None,
    roi_margin_mm: float = 20.0,
    connectivity: int = 6,
    smoothing_mm: float = 1.0,
    edge_weight: float = 0.25,
    region_weight: float = 1.0,
    distance_weight: float = 0.3,
    spread_floor: float = 2.0,
    progress: ProgressCallback | None = None,
) -> NDArray[np.integer]:
    """Segment a volume from painted seeds of several labels (Fast GrowCut-style competition).

    Parameters
    ----------
    volume : Volume
        The image, ``array`` of shape (K, J, I) (CT in HU); its spacing weights path lengths.
    seeds : (K, J, I) integer array
        Seed labels on the volume's grid, 0 where unknown, at least two distinct nonzero values.
        Not modified.
    background_value : int, optional
        A seed label that stands for "everything else": voxels it wins become 0 in the result.
    roi_margin_mm : float
        Margin in mm added on every side of the seeds' bounding box to make the region that is
        computed; voxels outside it are 0.
    connectivity : {6, 18, 26}
        Voxel neighbourhood of the paths.
    smoothing_mm : float
        Gaussian standard deviation in mm applied to the intensities first.
    edge_weight, region_weight, distance_weight, spread_floor : float
        Weights of the step cost, see :class:`SeedGrower`.
    progress : callable, optional
        ``progress(done, total, message)``; returning ``False`` cancels with
        :class:`~workstation.errors.CancelledError`.

    Returns
    -------
    (K, J, I) array of the seeds' dtype
        The label of the stroke that reaches each ROI voxel most cheaply; 0 outside the ROI and
        where ``background_value`` won.

    Raises
    ------
    ValueError
        Seeds of another shape, negative or non-integer labels, fewer than two distinct labels,
        a ``background_value`` that is not painted, or invalid options.
    """
    checked, values = _checked_seeds(volume, seeds)
    if background_value is not None and int(background_value) not in values:
        raise ValueError(f"grow_from_seeds: background_value {background_value} is not among the seed labels "
                         f"{values.tolist()}")
    grower = SeedGrower(volume, roi_margin_mm=roi_margin_mm, connectivity=connectivity, smoothing_mm=smoothing_mm,
                        edge_weight=edge_weight, region_weight=region_weight, distance_weight=distance_weight,
                        spread_floor=spread_floor)
    labels = grower.update(checked, progress=progress)
    if background_value is not None:
        labels[labels == background_value] = 0
    return labels
