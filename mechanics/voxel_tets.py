"""Label map -> tetrahedra directly from the voxels: the fallback when a surface cannot be meshed.

Every (block of) voxel(s) becomes a cube split into six tetrahedra around its main diagonal
(Kuhn / Freudenthal subdivision). All cubes are split the same way, so neighbouring cubes'
faces are cut along the same diagonal: the mesh is conforming, nodes are shared, and its volume
is exactly the number of cubes times the cube volume. Region ids are the label values.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import permutations

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.model import LabelMap, TetMesh
from workstation.progress import ProgressCallback, report

MAX_TETS = 6_000_000

# Corner offsets (di, dj, dk) of the six tets: 000 -> e_a -> e_a + e_b -> 111 for each axis order (a, b, c).
_KUHN = np.array([[(0, 0, 0), tuple(np.eye(3, dtype=int)[a]), tuple(np.eye(3, dtype=int)[a] + np.eye(3, dtype=int)[b]),
                   (1, 1, 1)] for a, b, _ in permutations(range(3))], dtype=np.int64)


def _block_labels(array: NDArray[np.integer], stride: int) -> NDArray[np.integer]:
    """Label of each ``stride``^3 block: its most frequent value (background included; ties -> lower)."""
    if stride == 1:
        return np.asarray(array)
    k, j, i = (int(np.ceil(n / stride)) * stride for n in array.shape)
    padded = np.zeros((k, j, i), dtype=array.dtype)
    padded[:array.shape[0], :array.shape[1], :array.shape[2]] = array
    blocks = padded.reshape(k // stride, stride, j // stride, stride, i // stride, stride)
    blocks = blocks.transpose(0, 2, 4, 1, 3, 5).reshape(k // stride, j // stride, i // stride, -1)
    values = np.unique(blocks)
    counts = np.stack([(blocks == v).sum(axis=-1) for v in values], axis=-1)
    return values[np.argmax(counts, axis=-1)]


def voxel_tetrahedra(label_map: LabelMap, *, labels: Iterable[str | int] | None = None, stride: int = 1,
                     name: str = "", progress: ProgressCallback | None = None) -> TetMesh:
    """Tetrahedra of the chosen segments' voxels, six per voxel (or per ``stride``^3 block).

    Parameters
    ----------
    label_map : label map (array ``[k, j, i]``, ``ijk_to_lps``).
    labels : segment names or values to mesh (default: every non-zero value present).
    stride : coarsening: blocks of ``stride`` x ``stride`` x ``stride`` voxels, each labelled by its most
        frequent value (background included), become one cube.
    name : name of the mesh.
    progress : ``progress(done, total, message)``.

    Returns
    -------
    TetMesh
        Nodes at the cube corners in LPS mm (voxel ``(i, j, k)`` spans ``i +- 1/2`` ...), positively
        oriented tets, ``region_ids`` = label values.

    Raises
    ------
    InputError
        Unknown segment, nothing to mesh, a bad stride or too many tetrahedra.
    """
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise InputError(f"stride {stride!r}: must be a positive whole number of voxels")
    array = np.asarray(label_map.array)
    if labels is None:
        values = [int(v) for v in label_map.present_values()]
    else:
        values = []
        for item in labels:
            try:
                values.append(label_map.segment(item).value)
            except KeyError as exc:
                if isinstance(item, (int, np.integer)) and int(item) > 0:
                    values.append(int(item))
                else:
                    raise InputError(f"segment {item!r}: {exc.args[0]}") from None
    report(progress, 0, 2, "voxel blocks")
    blocks = _block_labels(array, int(stride))
    chosen = np.isin(blocks, values) & (blocks != 0)
    kji = np.argwhere(chosen)
    if len(kji) == 0:
        raise InputError(f"label map {label_map.name or label_map.id!r}: no voxels of {values or 'any segment'} "
                         f"(stride {stride})")
    if 6 * len(kji) > MAX_TETS:
        raise InputError(f"stride {stride}: would make {6 * len(kji):,} tetrahedra (limit {MAX_TETS:,}); "
                         "use a larger stride")
    ijk = kji[:, ::-1]
    _, nj, ni = (n + 1 for n in blocks.shape)
    corners = ijk[:, None, None, :] + _KUHN[None]          # (n, 6, 4, 3) corner (i, j, k) of each tet
    flat = (corners[..., 2] * nj + corners[..., 1]) * ni + corners[..., 0]
    tets_global = flat.reshape(-1, 4)
    used, inverse = np.unique(tets_global, return_inverse=True)
    tets = inverse.reshape(-1, 4).astype(np.int64)
    ci = used % ni
    cj = (used // ni) % nj
    ck = used // (ni * nj)
    # Corner c of block b is voxel-index position c * stride - 1/2.
    index = np.stack([ci, cj, ck], axis=1) * float(stride) - 0.5
    affine = np.asarray(label_map.ijk_to_lps, dtype=float)
    points = index @ affine[:3, :3].T + affine[:3, 3]
    report(progress, 1, 2, f"{len(tets)} tetrahedra")
    p = points[tets]
    signed = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    flip = signed < 0
    tets[flip] = tets[flip][:, [0, 2, 1, 3]]
    regions = np.repeat(blocks[tuple(kji.T)].astype(np.int64), 6)
    report(progress, 2, 2, "done")
    return TetMesh(points_lps=points, tets=tets, region_ids=regions, name=name or label_map.name,
                   provenance={"mesher": "voxel_tetrahedra", "split": "6 tets per cube (Kuhn)", "stride": int(stride),
                               "label_values": [int(v) for v in values], "label_map_id": label_map.id})
