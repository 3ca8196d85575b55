"""Topology and size of a triangle surface: watertight, manifold, genus, volume, area.

Everything is computed from the arrays with numpy/scipy (no VTK), so the numbers do not
depend on a filter's notion of "clean". Lengths are those of the mesh (LPS mm for a
:class:`~workstation.model.SurfaceMesh`).

Definitions used here
---------------------
closed
    every edge is shared by exactly two triangles.
consistently oriented
    every directed edge occurs once, so two triangles sharing an edge traverse it in
    opposite directions.
watertight
    closed, consistently oriented and free of degenerate triangles (a triangle repeating
    a vertex index).
edge-manifold
    no edge is shared by more than two triangles.
vertex-manifold
    the triangles around each vertex form one fan (one edge-connected piece of its link).
manifold
    edge-manifold and vertex-manifold.
genus
    per connected component (triangles joined through shared edges),
    ``g = (2 - chi - b) / 2`` with the Euler characteristic ``chi = V - E + F`` and ``b``
    boundary loops; the reported genus is the sum over components (a sphere 0, a torus 1).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import ArrayLike, NDArray

from segmentation.union_find import find as _find
from segmentation.union_find import union as _union

__all__ = ["SurfaceQuality", "mesh_topology", "quality_from_topology", "signed_volume", "surface_area",
           "surface_quality"]


@dataclass(frozen=True)
class SurfaceQuality:
    """What a surface is, topologically and in size.

    Attributes
    ----------
    watertight : closed, consistently oriented, no degenerate triangles.
    manifold : edge-manifold and vertex-manifold.
    edge_manifold, vertex_manifold, closed, consistently_oriented : the parts of the two above.
    genus : sum of the genera of the connected components (sphere 0, torus 1).
    n_components : connected pieces (triangles joined through shared edges).
    euler_characteristic : ``V - E + F`` of the whole mesh (unused vertices not counted).
    volume_mm3 : enclosed volume (signed: negative when the normals point inward); meaningful
        only when watertight.
    area_mm2 : total triangle area.
    n_vertices, n_triangles : sizes (all vertices, also unused ones).
    n_boundary_edges : edges with one triangle.
    n_nonmanifold_edges : edges with three or more triangles.
    n_nonmanifold_vertices : vertices whose triangles form more than one fan.
    n_degenerate_triangles : triangles repeating a vertex index or with zero area.
    """

    watertight: bool
    manifold: bool
    genus: int
    n_components: int
    volume_mm3: float
    area_mm2: float
    edge_manifold: bool
    vertex_manifold: bool
    closed: bool
    consistently_oriented: bool
    euler_characteristic: int
    n_vertices: int
    n_triangles: int
    n_boundary_edges: int
    n_nonmanifold_edges: int
    n_nonmanifold_vertices: int
    n_degenerate_triangles: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of all fields."""
        return asdict(self)

    def summary(self) -> str:
        """One line, e.g. ``watertight manifold genus=0 components=1 volume=4188.8 mm3 area=1256.6 mm2``."""
        flags = ("watertight" if self.watertight else "NOT watertight") + " " + (
            "manifold" if self.manifold else "NOT manifold")
        return (f"{flags} genus={self.genus} components={self.n_components} "
                f"volume={self.volume_mm3:.1f} mm3 area={self.area_mm2:.1f} mm2")


def _as_arrays(mesh_or_vertices: Any, triangles: ArrayLike | None) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    if triangles is None:
        return np.asarray(mesh_or_vertices.vertices_lps, dtype=float), np.asarray(mesh_or_vertices.triangles,
                                                                                   dtype=np.int64)
    return np.asarray(mesh_or_vertices, dtype=float), np.asarray(triangles, dtype=np.int64).reshape(-1, 3)


def signed_volume(vertices: ArrayLike, triangles: ArrayLike) -> float:
    """Signed enclosed volume of a closed surface (positive for outward normals).

    Parameters
    ----------
    vertices : (N, 3) positions (mm gives mm^3).
    triangles : (M, 3) vertex indices, counter-clockwise seen from outside.
    """
    v = np.asarray(vertices, dtype=float)
    t = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if len(t) == 0:
        return 0.0
    # Shift to the centroid for round-off: the result does not depend on the origin for closed surfaces.
    v = v - v[t.ravel()].mean(axis=0)
    a, b, c = v[t[:, 0]], v[t[:, 1]], v[t[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def surface_area(vertices: ArrayLike, triangles: ArrayLike) -> float:
    """Total area of the triangles ((N, 3) vertices, (M, 3) indices); mm gives mm^2."""
    v = np.asarray(vertices, dtype=float)
    t = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    if len(t) == 0:
        return 0.0
    return float(0.5 * np.linalg.norm(np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]]), axis=1).sum())


@njit(cache=True)
def _size_kernel(v: NDArray[np.float64], t: NDArray[np.int64], zero_area2: float
                 ) -> tuple[float, float, int]:  # pragma: no cover - compiled
    """(area, signed volume about the corners' centroid, triangles degenerate by index or with
    squared doubled area <= ``zero_area2``) in one pass: :func:`signed_volume` and
    :func:`surface_area` without their (M, 3) temporaries."""
    m = t.shape[0]
    cx = 0.0
    cy = 0.0
    cz = 0.0
    for f in range(m):
        for k in range(3):
            cx += v[t[f, k], 0]
            cy += v[t[f, k], 1]
            cz += v[t[f, k], 2]
    if m:
        cx /= 3 * m
        cy /= 3 * m
        cz /= 3 * m
    area = 0.0
    volume = 0.0
    degenerate = 0
    for f in range(m):
        a, b, c = t[f, 0], t[f, 1], t[f, 2]
        ax, ay, az = v[a, 0] - cx, v[a, 1] - cy, v[a, 2] - cz
        bx, by, bz = v[b, 0] - cx, v[b, 1] - cy, v[b, 2] - cz
        qx, qy, qz = v[c, 0] - cx, v[c, 1] - cy, v[c, 2] - cz
        ux, uy, uz = bx - ax, by - ay, bz - az
        wx, wy, wz = qx - ax, qy - ay, qz - az
        nx = uy * wz - uz * wy
        ny = uz * wx - ux * wz
        nz = ux * wy - uy * wx
        n2 = nx * nx + ny * ny + nz * nz
        area += np.sqrt(n2)
        volume += ax * (by * qz - bz * qy) - ay * (bx * qz - bz * qx) + az * (bx * qy - by * qx)
        if n2 <= zero_area2 or a == b or b == c or c == a:
            degenerate += 1
    return area / 2.0, volume / 6.0, degenerate


@njit(cache=True)
def _topology_kernel(t: NDArray[np.int64], n: int) -> tuple[Any, ...]:  # pragma: no cover - compiled
    """One pass over the vertex fans: edges, orientation, fans, components, Euler counts, boundary loops."""
    m = t.shape[0]
    degenerate = np.zeros(m, dtype=np.bool_)
    for f in range(m):
        if t[f, 0] == t[f, 1] or t[f, 1] == t[f, 2] or t[f, 2] == t[f, 0]:
            degenerate[f] = True
    # Corners of each vertex (CSR), degenerate triangles left out.
    deg = np.zeros(n + 1, dtype=np.int64)
    for f in range(m):
        if not degenerate[f]:
            for k in range(3):
                deg[t[f, k] + 1] += 1
    start = np.cumsum(deg)
    fill = start[:-1].copy()
    corners = np.empty(start[-1], dtype=np.int64)
    for f in range(m):
        if not degenerate[f]:
            for k in range(3):
                v = t[f, k]
                corners[fill[v]] = 3 * f + k
                fill[v] += 1
    face_parent = np.arange(m)
    n_edges = 0
    n_boundary = 0
    n_nonmanifold_edges = 0
    inconsistent = False
    n_nonmanifold_vertices = 0
    n_used = 0
    edge_face = np.empty(3 * m, dtype=np.int64)  # one triangle of each edge
    boundary_u = np.empty(3 * m, dtype=np.int64)
    boundary_v = np.empty(3 * m, dtype=np.int64)
    boundary_face = np.empty(3 * m, dtype=np.int64)
    problem = np.zeros(n, dtype=np.bool_)  # on a non-manifold or inconsistent edge or a degenerate triangle
    max_deg = 0
    for v in range(n):
        max_deg = max(max_deg, start[v + 1] - start[v])
    local_parent = np.empty(max_deg, dtype=np.int64)
    nxt = np.empty(max_deg, dtype=np.int64)
    prv = np.empty(max_deg, dtype=np.int64)
    for v in range(n):
        s0 = start[v]
        d = start[v + 1] - s0
        if d == 0:
            continue
        n_used += 1
        for a in range(d):
            c = corners[s0 + a]
            f = c // 3
            k = c % 3
            nxt[a] = t[f, (k + 1) % 3]
            prv[a] = t[f, (k + 2) % 3]
            local_parent[a] = a
        # Fans: corners sharing an edge through v belong to one fan.
        for a in range(d):
            for b in range(a + 1, d):
                if nxt[a] == prv[b] or prv[a] == nxt[b] or nxt[a] == nxt[b] or prv[a] == prv[b]:
                    _union(local_parent, a, b)
        fans = 0
        for a in range(d):
            if _find(local_parent, a) == a:
                fans += 1
        if fans > 1:
            n_nonmanifold_vertices += 1
            problem[v] = True
        # Edges {v, u} with u > v, each once.
        for a in range(d):
            for side in range(2):
                u = nxt[a] if side == 0 else prv[a]
                if u <= v:
                    continue
                seen = False
                for b in range(a + 1):
                    if (b < a and (nxt[b] == u or prv[b] == u)) or (b == a and side == 1 and nxt[a] == u):
                        seen = True
                        break
                if seen:
                    continue
                count_vu = 0
                count_uv = 0
                first_face = -1
                for b in range(d):
                    fb = corners[s0 + b] // 3
                    if nxt[b] == u:
                        count_vu += 1
                    elif prv[b] == u:
                        count_uv += 1
                    else:
                        continue
                    if first_face < 0:
                        first_face = fb
                    else:
                        _union(face_parent, first_face, fb)
                total = count_vu + count_uv
                if count_vu > 1 or count_uv > 1:
                    inconsistent = True
                    problem[v] = True
                    problem[u] = True
                if total == 1:
                    boundary_u[n_boundary] = v
                    boundary_v[n_boundary] = u
                    boundary_face[n_boundary] = first_face
                    n_boundary += 1
                elif total > 2:
                    n_nonmanifold_edges += 1
                    problem[v] = True
                    problem[u] = True
                edge_face[n_edges] = first_face
                n_edges += 1
    # Compact component labels.
    comp = np.full(m, -1, dtype=np.int64)
    root_label = np.full(m, -1, dtype=np.int64)
    n_comp = 0
    for f in range(m):
        if degenerate[f]:
            continue
        r = _find(face_parent, f)
        if root_label[r] < 0:
            root_label[r] = n_comp
            n_comp += 1
        comp[f] = root_label[r]
    f_per = np.zeros(n_comp, dtype=np.int64)
    e_per = np.zeros(n_comp, dtype=np.int64)
    v_per = np.zeros(n_comp, dtype=np.int64)
    for f in range(m):
        if comp[f] >= 0:
            f_per[comp[f]] += 1
    for e in range(n_edges):
        e_per[comp[edge_face[e]]] += 1
    last_seen = np.full(n_comp, -1, dtype=np.int64)
    for v in range(n):
        for a in range(start[v], start[v + 1]):
            cc = comp[corners[a] // 3]
            if last_seen[cc] != v:
                last_seen[cc] = v
                v_per[cc] += 1
    # Boundary loops: pieces of the boundary-edge graph, assigned to a component.
    vertex_parent = np.arange(n)
    for e in range(n_boundary):
        _union(vertex_parent, boundary_u[e], boundary_v[e])
    loops_per = np.zeros(n_comp, dtype=np.int64)
    loop_done = np.zeros(n, dtype=np.bool_)
    for e in range(n_boundary):
        r = _find(vertex_parent, boundary_u[e])
        if not loop_done[r]:
            loop_done[r] = True
            loops_per[comp[boundary_face[e]]] += 1
    for f in range(m):
        if degenerate[f]:
            for k in range(3):
                problem[t[f, k]] = True
    return (comp, n_comp, f_per, e_per, v_per, loops_per, n_edges, n_boundary, n_nonmanifold_edges,
            inconsistent, n_nonmanifold_vertices, n_used, int(degenerate.sum()), problem)


def mesh_topology(triangles: ArrayLike, n_vertices: int) -> dict[str, Any]:
    """Edge/vertex topology of a triangle list (no geometry).

    Parameters
    ----------
    triangles : (M, 3) vertex indices.
    n_vertices : number of vertices the indices refer to.

    Returns
    -------
    dict with ``n_edges``, ``n_boundary_edges``, ``n_nonmanifold_edges``, ``n_nonmanifold_vertices``,
    ``closed``, ``consistently_oriented``, ``edge_manifold``, ``face_component`` (M,) component of each
    triangle (-1 for index-degenerate ones), ``n_components``, ``genus_per_component``,
    ``euler_characteristic``, ``n_degenerate`` (index-degenerate triangles) and ``problem_vertices``
    (N,) bool: vertices that are non-manifold, on a non-manifold or inconsistently oriented edge, or
    on an index-degenerate triangle.
    """
    t = np.ascontiguousarray(np.asarray(triangles, dtype=np.int64).reshape(-1, 3))
    n = int(n_vertices)
    if len(t) and (t.min() < 0 or t.max() >= n):
        raise ValueError(f"triangle indices must lie in 0..{n - 1}")
    (comp, n_comp, f_per, e_per, v_per, loops_per, n_edges, n_boundary, n_nm_edges, inconsistent, n_nm_vertices,
     n_used, n_degenerate, problem) = _topology_kernel(t, n)
    chi_per = v_per - e_per + f_per
    return {
        "n_edges": int(n_edges),
        "n_boundary_edges": int(n_boundary),
        "n_nonmanifold_edges": int(n_nm_edges),
        "n_nonmanifold_vertices": int(n_nm_vertices),
        "closed": bool(len(t) > 0 and n_boundary == 0 and n_nm_edges == 0),
        "consistently_oriented": not bool(inconsistent),
        "edge_manifold": n_nm_edges == 0,
        "face_component": comp,
        "n_components": int(n_comp),
        "genus_per_component": (2 - chi_per - loops_per) // 2,
        "euler_characteristic": int(n_used - n_edges + (len(t) - n_degenerate)),
        "n_degenerate": int(n_degenerate),
        "problem_vertices": problem,
    }


def surface_quality(mesh: Any, triangles: ArrayLike | None = None) -> SurfaceQuality:
    """Topology and size of a surface.

    Parameters
    ----------
    mesh : a :class:`~workstation.model.SurfaceMesh`, or (N, 3) vertex positions when
        ``triangles`` is given.
    triangles : (M, 3) vertex indices (only with vertex positions).

    Returns
    -------
    SurfaceQuality
        Volume in mm^3 and area in mm^2 for a mesh in mm.
    """
    vertices, tris = _as_arrays(mesh, triangles)
    return quality_from_topology(vertices, tris, mesh_topology(tris, len(vertices)))


def quality_from_topology(vertices: NDArray[np.float64], tris: NDArray[np.int64], topo: dict[str, Any]
                          ) -> SurfaceQuality:
    """:func:`surface_quality` of (N, 3) ``vertices`` and (M, 3) ``tris`` whose :func:`mesh_topology`
    ``topo`` is already known (for these triangles, on any numbering of the same vertices)."""
    scale = float(np.ptp(vertices, axis=0).max()) if len(vertices) else 0.0
    # Zero area: doubled area <= (1e-12 scale)^2.
    area, volume, n_degenerate = _size_kernel(np.ascontiguousarray(vertices, dtype=np.float64),
                                              np.ascontiguousarray(tris, dtype=np.int64), (1e-12 * scale) ** 4)
    n_nonmanifold_edges = topo["n_nonmanifold_edges"]
    vertex_manifold = topo["n_nonmanifold_vertices"] == 0
    watertight = topo["closed"] and topo["consistently_oriented"] and topo["n_degenerate"] == 0
    return SurfaceQuality(
        watertight=bool(watertight),
        manifold=bool(topo["edge_manifold"] and vertex_manifold),
        genus=int(topo["genus_per_component"].sum()) if topo["n_components"] else 0,
        n_components=topo["n_components"],
        volume_mm3=float(volume),
        area_mm2=float(area),
        edge_manifold=bool(topo["edge_manifold"]),
        vertex_manifold=bool(vertex_manifold),
        closed=bool(topo["closed"]),
        consistently_oriented=bool(topo["consistently_oriented"]),
        euler_characteristic=topo["euler_characteristic"],
        n_vertices=len(vertices),
        n_triangles=len(tris),
        n_boundary_edges=topo["n_boundary_edges"],
        n_nonmanifold_edges=n_nonmanifold_edges,
        n_nonmanifold_vertices=int(topo["n_nonmanifold_vertices"]),
        n_degenerate_triangles=int(n_degenerate),
    )
