"""Surface mesh files: STL, OBJ, PLY, 3MF and VTP, written atomically and read back.

Coordinates are patient **LPS millimetres** in every format (x = patient left,
y = posterior, z = superior), the frame of :class:`~workstation.model.SurfaceMesh`; no flip
to RAS is made. STL, OBJ and PLY cannot state a frame, so the writer names it where the
format allows a free text: the STL header, an OBJ comment, PLY ``comment`` lines. A reader
that ignores them sees plain millimetres. 3MF states the unit (``unit="millimeter"``) and the
frame in its metadata; VTP stores it as field data.

========  ===============================================  ================================
suffix    what is written                                  read back by :func:`read_mesh`
========  ===============================================  ================================
``.stl``  binary STL, float32 vertices (mm), no colour     yes (binary and ASCII)
``.obj``  ``o`` per mesh, ``v x y z r g b`` colours        yes (``v``/``f``, any polygons)
``.ply``  binary little-endian, double xyz, uchar RGB      yes (binary and ASCII)
          per vertex, int ``object`` per face
``.3mf``  one object per mesh, millimetre, base-material   yes
          colour per object (3MF core spec)
``.vtp``  VTK XML PolyData, ``RGB`` point data,            yes
          ``object`` cell data, frame in field data
========  ===============================================  ================================

Several meshes go into one file as separate objects (STL: one merged solid). Colours are
``color_rgb`` (0..1) as 8-bit RGB. Errors are :class:`~workstation.errors.InputError` (reading)
and :class:`~workstation.errors.OutputError` (writing), one line naming the file.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError, OutputError
from workstation.io.atomic import atomic_path
from workstation.model.mesh import SurfaceMesh

__all__ = ["MESH_SUFFIXES", "READABLE_SUFFIXES", "is_mesh_file", "read_mesh", "read_meshes", "write_mesh"]

MESH_SUFFIXES = (".stl", ".obj", ".ply", ".3mf", ".vtp")
READABLE_SUFFIXES = MESH_SUFFIXES
FRAME_TEXT = "coordinate system LPS (x=left, y=posterior, z=superior), units mm"
_APP = "surgical-twin"
_3MF_CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
_3MF_NS = "http://surgical-twin.org/3mf/2025"
_STL_RECORD = np.dtype([("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])


def is_mesh_file(path: str | os.PathLike[str]) -> bool:
    """True when the suffix is one :func:`write_mesh` knows."""
    return Path(path).suffix.lower() in MESH_SUFFIXES


# ------------------------------------------------------------------------------------------
# writing
# ------------------------------------------------------------------------------------------

def write_mesh(mesh: SurfaceMesh | Sequence[SurfaceMesh], path: str | os.PathLike[str], *,
               binary: bool = True) -> Path:
    """Write one or several surfaces to ``path``, the format chosen by its suffix.

    Parameters
    ----------
    mesh : a :class:`SurfaceMesh` or a sequence of them (vertices (N, 3) LPS mm, triangles (M, 3)).
    path : target file (``.stl``, ``.obj``, ``.ply``, ``.3mf``, ``.vtp``); written atomically
        (a temporary file beside it renamed over it), so a failure leaves any old file intact.
    binary : binary ``.stl`` and ``.ply`` (default); ``False`` writes ASCII (larger; ignored for
        the other formats).

    Returns
    -------
    Path
        The written file. Coordinates are LPS millimetres in every format.

    Raises
    ------
    OutputError
        Unknown suffix, empty input, missing folder, or the write failed.
    """
    target = Path(path)
    meshes = [mesh] if isinstance(mesh, SurfaceMesh) else list(mesh)
    suffix = target.suffix.lower()
    writers = {".stl": _write_stl, ".obj": _write_obj, ".ply": _write_ply, ".3mf": _write_3mf, ".vtp": _write_vtp}
    if suffix not in writers:
        raise OutputError(f"{target}: unknown mesh format {suffix or '(no suffix)'}; use one of {', '.join(writers)}")
    if not meshes or not all(isinstance(m, SurfaceMesh) for m in meshes):
        raise OutputError(f"{target}: nothing to write (give a SurfaceMesh or a list of them)")
    if all(m.n_triangles == 0 for m in meshes):
        raise OutputError(f"{target}: the surface has no triangles")
    for m in meshes:
        if m.coordinate_system != "LPS":
            raise OutputError(f"{target}: surface {m.name!r} is in {m.coordinate_system}, not LPS")
    try:
        with atomic_path(target) as tmp:
            if suffix in (".stl", ".ply"):
                writers[suffix](meshes, tmp, ascii=not binary)
            else:
                writers[suffix](meshes, tmp)
    except OutputError:
        raise
    except (OSError, RuntimeError, ValueError) as exc:
        raise OutputError(f"{target}: could not write ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") \
            from None
    return target


def _rgb8(color: Sequence[float]) -> tuple[int, int, int]:
    r, g, b = (int(round(min(1.0, max(0.0, float(c))) * 255)) for c in color)
    return r, g, b


def _merged(meshes: Sequence[SurfaceMesh]) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64],
                                                    NDArray[np.int64]]:
    """All vertices (N, 3), triangles (M, 3), the object of each vertex (N,) and of each triangle (M,)."""
    offsets = np.cumsum([0] + [m.n_vertices for m in meshes])
    vertices = np.concatenate([np.asarray(m.vertices_lps, dtype=np.float64) for m in meshes])
    triangles = np.concatenate([np.asarray(m.triangles, dtype=np.int64) + o
                                for m, o in zip(meshes, offsets, strict=False)])
    vertex_object = np.repeat(np.arange(len(meshes)), [m.n_vertices for m in meshes])
    face_object = np.repeat(np.arange(len(meshes)), [m.n_triangles for m in meshes])
    return vertices, triangles, vertex_object, face_object


def _names(meshes: Sequence[SurfaceMesh]) -> list[str]:
    return [re.sub(r"\s+", "_", m.name or m.segment or f"surface_{i}") for i, m in enumerate(meshes)]


def _write_stl(meshes: Sequence[SurfaceMesh], tmp: Path, *, ascii: bool = False) -> None:
    vertices, triangles, _, _ = _merged(meshes)
    corners = vertices[triangles].astype(np.float32)
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]).astype(np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = (normals / np.where(length > 0, length, 1.0)).astype(np.float32)
    name = "+".join(_names(meshes))
    if ascii:
        with open(tmp, "w", encoding="ascii", newline="\n") as f:
            f.write(f"solid {name[:60]}\n")
            for n, tri in zip(normals, corners, strict=True):
                f.write(f"  facet normal {n[0]:.7e} {n[1]:.7e} {n[2]:.7e}\n    outer loop\n")
                for v in tri:
                    f.write(f"      vertex {v[0]:.9g} {v[1]:.9g} {v[2]:.9g}\n")
                f.write("    endloop\n  endfacet\n")
            f.write(f"endsolid {name[:60]}\n")
        return
    # A binary header must not start with "solid" (readers would take it for ASCII).
    header = f"{_APP} binary STL; {name}; LPS mm".encode("ascii", "replace")[:80].ljust(80, b" ")
    records = np.zeros(len(triangles), dtype=_STL_RECORD)
    records["normal"] = normals
    records["vertices"] = corners
    with open(tmp, "wb") as f:
        f.write(header)
        f.write(struct.pack("<I", len(triangles)))
        f.write(records.tobytes())


def _write_obj(meshes: Sequence[SurfaceMesh], tmp: Path) -> None:
    names = _names(meshes)
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(f"# {_APP} OBJ: {FRAME_TEXT}\n")
        f.write("# vertex lines are 'v x y z r g b' (colour 0..1, the common vertex-colour extension)\n")
        offset = 1
        for m, name in zip(meshes, names, strict=True):
            f.write(f"o {name}\n")
            f.write(f"# segment={m.segment!r} color_rgb={list(m.color_rgb)}\n")
            rgb = np.broadcast_to(np.asarray(m.color_rgb, dtype=float), (m.n_vertices, 3))
            np.savetxt(f, np.hstack([np.asarray(m.vertices_lps), rgb]), fmt="v %.10g %.10g %.10g %.4g %.4g %.4g")
            np.savetxt(f, np.asarray(m.triangles) + offset, fmt="f %d %d %d")
            offset += m.n_vertices


def _write_ply(meshes: Sequence[SurfaceMesh], tmp: Path, *, ascii: bool = False) -> None:
    vertices, triangles, vertex_object, face_object = _merged(meshes)
    colors = np.array([_rgb8(m.color_rgb) for m in meshes], dtype=np.uint8)[vertex_object]
    names = _names(meshes)
    header = [
        "ply",
        f"format {'ascii' if ascii else 'binary_little_endian'} 1.0",
        f"comment {_APP} PLY: {FRAME_TEXT}",
        *(f"comment object {i} {name} color_rgb {' '.join(f'{c:.6g}' for c in m.color_rgb)}"
          for i, (m, name) in enumerate(zip(meshes, names, strict=True))),
        f"element vertex {len(vertices)}",
        "property double x", "property double y", "property double z",
        "property uchar red", "property uchar green", "property uchar blue",
        f"element face {len(triangles)}",
        "property list uchar int vertex_indices",
        "property int object",
        "end_header",
    ]
    with open(tmp, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii", "replace"))
        if ascii:
            rows = np.hstack([vertices, colors])
            np.savetxt(f, rows, fmt="%.17g %.17g %.17g %d %d %d")
            np.savetxt(f, np.hstack([np.full((len(triangles), 1), 3), triangles, face_object[:, None]]), fmt="%d")
            return
        vdtype = np.dtype([("xyz", "<f8", (3,)), ("rgb", "u1", (3,))])
        vrec = np.empty(len(vertices), dtype=vdtype)
        vrec["xyz"] = vertices
        vrec["rgb"] = colors
        fdtype = np.dtype([("n", "u1"), ("v", "<i4", (3,)), ("object", "<i4")])
        frec = np.empty(len(triangles), dtype=fdtype)
        frec["n"] = 3
        frec["v"] = triangles
        frec["object"] = face_object
        f.write(vrec.tobytes())
        f.write(frec.tobytes())


def _write_3mf(meshes: Sequence[SurfaceMesh], tmp: Path) -> None:
    """3MF core: one mesh object per surface, unit millimetre, a base material (display colour) each."""
    names = _names(meshes)
    parts = [f'<?xml version="1.0" encoding="UTF-8"?>\n'
             f'<model unit="millimeter" xml:lang="en-US" xmlns="{_3MF_CORE}" xmlns:st="{_3MF_NS}">\n'
             f' <metadata name="Application">{_APP}</metadata>\n'
             f' <metadata name="Description">Patient anatomy; {FRAME_TEXT}</metadata>\n'
             f' <metadata name="st:coordinate_system">LPS</metadata>\n'
             ' <resources>\n'
             '  <basematerials id="1">\n']
    for m, name in zip(meshes, names, strict=True):
        r, g, b = _rgb8(m.color_rgb)
        parts.append(f'   <base name="{_xml(name)}" displaycolor="#{r:02X}{g:02X}{b:02X}FF"/>\n')
    parts.append('  </basematerials>\n')
    for index, (m, name) in enumerate(zip(meshes, names, strict=True)):
        if m.n_triangles == 0:
            continue
        parts.append(f'  <object id="{index + 2}" type="model" name="{_xml(name)}" pid="1" pindex="{index}">\n'
                     '   <mesh>\n    <vertices>\n')
        v = np.asarray(m.vertices_lps, dtype=np.float64)
        parts.append("".join(f'     <vertex x="{x:.9g}" y="{y:.9g}" z="{z:.9g}"/>\n' for x, y, z in v.tolist()))
        parts.append('    </vertices>\n    <triangles>\n')
        t = np.asarray(m.triangles, dtype=np.int64)
        parts.append("".join(f'     <triangle v1="{a}" v2="{b}" v3="{c}"/>\n' for a, b, c in t.tolist()))
        parts.append('    </triangles>\n   </mesh>\n  </object>\n')
    parts.append(' </resources>\n <build>\n')
    for index, m in enumerate(meshes):
        if m.n_triangles:
            parts.append(f'  <item objectid="{index + 2}"/>\n')
    parts.append(' </build>\n</model>\n')
    content_types = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                     '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">\n'
                     ' <Default Extension="rels"'
                     ' ContentType="application/vnd.openxmlformats-package.relationships+xml"/>\n'
                     ' <Default Extension="model"'
                     ' ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>\n'
                     '</Types>\n')
    rels = ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\n'
            ' <Relationship Target="/3D/3dmodel.model" Id="rel0" '
            'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>\n'
            '</Relationships>\n')
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", content_types)
        z.writestr("_rels/.rels", rels)
        z.writestr("3D/3dmodel.model", "".join(parts))


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _ascii(text: str) -> str:
    return str(text).encode("ascii", "replace").decode("ascii")


def _write_vtp(meshes: Sequence[SurfaceMesh], tmp: Path) -> None:
    import pyvista as pv

    vertices, triangles, vertex_object, face_object = _merged(meshes)
    poly = pv.PolyData(vertices, np.hstack([np.full((len(triangles), 1), 3), triangles]).ravel())
    poly.point_data["RGB"] = np.array([_rgb8(m.color_rgb) for m in meshes], dtype=np.uint8)[vertex_object]
    poly.cell_data["object"] = face_object.astype(np.int32)
    poly.field_data["coordinate_system"] = np.array(["LPS"])
    poly.field_data["units"] = np.array(["mm"])
    # VTK string arrays hold ASCII only: the names as readable ASCII ("?" for other characters), and
    # exactly as JSON with \u escapes (read back first).
    poly.field_data["names"] = np.array([_ascii(m.name) for m in meshes])
    poly.field_data["segments"] = np.array([_ascii(m.segment) for m in meshes])
    poly.field_data["names_json"] = np.array([json.dumps([m.name for m in meshes])])
    poly.field_data["color_rgb"] = np.array([m.color_rgb for m in meshes], dtype=float)
    poly.field_data["provenance_json"] = np.array([json.dumps(m.provenance, default=str) for m in meshes])
    poly.save(str(tmp), binary=True)


# ------------------------------------------------------------------------------------------
# reading
# ------------------------------------------------------------------------------------------

def read_mesh(path: str | os.PathLike[str], *, name: str | None = None) -> SurfaceMesh:
    """Read a surface file as one :class:`SurfaceMesh` (several objects are merged).

    Parameters
    ----------
    path : ``.stl`` (binary or ASCII), ``.obj``, ``.ply`` (binary or ASCII), ``.3mf`` or ``.vtp``.
    name : the mesh's name (default: the object's name in the file, else the file stem).

    Returns
    -------
    SurfaceMesh
        Vertices taken as LPS mm (the files written here are; a foreign file is trusted to be).
        STL's per-triangle corners are merged into shared vertices (exactly equal coordinates).
        The colour is the file's (first object's) colour when it has one.

    Raises
    ------
    InputError
        Missing, unknown or unreadable file (the message names it).
    """
    meshes = read_meshes(path)
    if len(meshes) == 1:
        mesh = meshes[0]
        if name is not None:
            mesh = SurfaceMesh(vertices_lps=mesh.vertices_lps, triangles=mesh.triangles, name=name,
                               segment=mesh.segment, color_rgb=mesh.color_rgb, provenance=mesh.provenance)
        return mesh
    offsets = np.cumsum([0] + [m.n_vertices for m in meshes])
    vertices = np.concatenate([m.vertices_lps for m in meshes])
    triangles = np.concatenate([m.triangles + o for m, o in zip(meshes, offsets, strict=False)])
    provenance = {"source": "file", "path": str(path), "objects": [m.name for m in meshes],
                  "coordinate_system": "LPS", "units": "mm"}
    return SurfaceMesh(vertices_lps=vertices, triangles=triangles, name=name or Path(path).stem,
                       color_rgb=meshes[0].color_rgb, provenance=provenance)


def read_meshes(path: str | os.PathLike[str]) -> list[SurfaceMesh]:
    """Read every object of a surface file as its own :class:`SurfaceMesh` (see :func:`read_mesh`).

    STL files hold one object; OBJ ``o``/``g`` groups, PLY and VTP ``object`` ids and 3MF
    objects are separate meshes.
    """
    source = Path(path)
    readers = {".stl": _read_stl, ".obj": _read_obj, ".ply": _read_ply, ".3mf": _read_3mf, ".vtp": _read_vtp}
    suffix = source.suffix.lower()
    if suffix not in readers:
        raise InputError(f"{source}: unknown mesh format {suffix or '(no suffix)'}; "
                         f"readable: {', '.join(readers)}")
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    try:
        parts = readers[suffix](source)
    except InputError:
        raise
    except (OSError, ValueError, IndexError, KeyError, struct.error, zipfile.BadZipFile,
            ElementTree.ParseError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise InputError(f"{source}: not a readable {suffix[1:].upper()} file ({reason})") from None
    meshes = []
    for index, (name, vertices, triangles, color) in enumerate(parts):
        if len(triangles) == 0:
            continue
        vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
        triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
        if not np.all(np.isfinite(vertices)):
            raise InputError(f"{source}: vertex coordinates are not all finite")
        if triangles.size and (triangles.min() < 0 or triangles.max() >= len(vertices)):
            raise InputError(f"{source}: a triangle refers to a vertex that does not exist")
        provenance = {"source": "file", "path": str(source), "format": suffix[1:], "object": index,
                      "coordinate_system": "LPS", "units": "mm"}
        kwargs: dict[str, Any] = {"color_rgb": color} if color is not None else {}
        meshes.append(SurfaceMesh(vertices_lps=vertices, triangles=triangles, name=name or source.stem,
                                  provenance=provenance, **kwargs))
    if not meshes:
        raise InputError(f"{source}: the file holds no triangles")
    return meshes


_Part = tuple[str, NDArray[np.float64], NDArray[np.int64], "tuple[float, float, float] | None"]


def _merge_corners(corners: NDArray[np.float32]) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Shared vertices from (M, 3, 3) triangle corners (exactly equal coordinates become one vertex)."""
    flat = np.ascontiguousarray(corners.reshape(-1, 3))
    keys = flat.view(np.dtype((np.void, flat.dtype.itemsize * 3))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return flat[first].astype(np.float64), inverse.reshape(-1, 3).astype(np.int64)


def _read_stl(path: Path) -> list[_Part]:
    data = path.read_bytes()
    if len(data) < 84:
        if data.lstrip().startswith(b"solid"):
            return _read_stl_ascii(path, data)
        raise InputError(f"{path}: too short for an STL file ({len(data)} bytes)")
    (count,) = struct.unpack("<I", data[80:84])
    if 84 + count * 50 == len(data):
        records = np.frombuffer(data, dtype=_STL_RECORD, count=count, offset=84)
        vertices, triangles = _merge_corners(records["vertices"])
        header = data[:80].decode("ascii", "replace")
        match = re.search(r"binary STL; ([^;]+);", header)
        return [(match.group(1).strip() if match else "", vertices, triangles, None)]
    if data.lstrip().startswith(b"solid"):
        return _read_stl_ascii(path, data)
    raise InputError(f"{path}: binary STL says {count} triangles but the file size does not match")


def _read_stl_ascii(path: Path, data: bytes) -> list[_Part]:
    text = data.decode("ascii", "replace")
    numbers = re.findall(r"^\s*vertex\s+(\S+)\s+(\S+)\s+(\S+)", text, flags=re.MULTILINE)
    if not numbers or len(numbers) % 3:
        raise InputError(f"{path}: ASCII STL without a whole number of triangles")
    corners = np.array(numbers, dtype=np.float64).astype(np.float32).reshape(-1, 3, 3)
    vertices, triangles = _merge_corners(corners)
    first = text.lstrip().splitlines()[0].split(maxsplit=1)
    return [(first[1].strip() if len(first) > 1 else "", vertices, triangles, None)]


def _read_obj(path: Path) -> list[_Part]:
    vertices: list[list[float]] = []
    colors: list[list[float] | None] = []
    objects: list[tuple[str, list[list[int]]]] = [("", [])]
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_number, line in enumerate(f, start=1):
            fields = line.split()
            if not fields or fields[0].startswith("#"):
                continue
            key = fields[0]
            if key == "v":
                vertices.append([float(x) for x in fields[1:4]])
                colors.append([float(x) for x in fields[4:7]] if len(fields) >= 7 else None)
            elif key == "f":
                corners = []
                for token in fields[1:]:
                    index = int(token.split("/")[0])
                    corners.append(index - 1 if index > 0 else len(vertices) + index)
                if len(corners) < 3:
                    raise InputError(f"{path}: line {line_number}: a face needs three vertices")
                objects[-1][1].extend([corners[0], corners[i], corners[i + 1]] for i in range(1, len(corners) - 1))
            elif key in ("o", "g"):
                label = " ".join(fields[1:])
                if objects[-1][1]:
                    objects.append((label, []))
                else:
                    objects[-1] = (label, [])
    if not vertices:
        raise InputError(f"{path}: no 'v' lines")
    points = np.array(vertices, dtype=np.float64)
    parts: list[_Part] = []
    for label, faces in objects:
        if not faces:
            continue
        tri = np.array(faces, dtype=np.int64)
        if tri.min() < 0 or tri.max() >= len(points):
            raise InputError(f"{path}: object {label!r}: a face refers to a vertex that does not exist")
        used, local = np.unique(tri, return_inverse=True)
        color = colors[used[0]]
        parts.append((label, points[used], local.reshape(-1, 3),
                      tuple(float(c) for c in color) if color is not None else None))
    return parts


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}


def _read_ply(path: Path) -> list[_Part]:
    data = path.read_bytes()
    end = data.find(b"end_header")
    if not data.startswith(b"ply") or end < 0:
        raise InputError(f"{path}: not a PLY file (no 'ply' magic or 'end_header')")
    body_start = data.index(b"\n", end) + 1
    header = data[:end].decode("ascii", "replace").splitlines()
    fmt = ""
    elements: list[tuple[str, int, list[tuple[str, ...]]]] = []
    comments: list[str] = []
    for line in header:
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "format":
            fmt = fields[1]
        elif fields[0] == "comment":
            comments.append(line[len("comment"):].strip())
        elif fields[0] == "element":
            elements.append((fields[1], int(fields[2]), []))
        elif fields[0] == "property":
            elements[-1][2].append(tuple(fields[1:]))
    if fmt not in ("ascii", "binary_little_endian", "binary_big_endian"):
        raise InputError(f"{path}: unknown PLY format {fmt!r}")
    values: dict[str, dict[str, NDArray[Any]]] = {}
    if fmt == "ascii":
        tokens = data[body_start:].split()
        position = 0
        for name, count, props in elements:
            columns: dict[str, list[Any]] = {p[-1]: [] for p in props}
            for _ in range(count):
                for prop in props:
                    if prop[0] == "list":
                        n = int(tokens[position])
                        columns[prop[-1]].append([int(t) for t in tokens[position + 1:position + 1 + n]])
                        position += 1 + n
                    else:
                        columns[prop[-1]].append(float(tokens[position]))
                        position += 1
            values[name] = {key: (np.array(col, dtype=object) if props[i][0] == "list" else np.array(col))
                            for i, (key, col) in enumerate(columns.items())}
    else:
        order = "<" if fmt == "binary_little_endian" else ">"
        offset = body_start
        for name, count, props in elements:
            if any(p[0] == "list" for p in props):
                values[name], offset = _ply_binary_lists(path, data, offset, count, props, order)
            else:
                dtype = np.dtype([(p[-1], order + _PLY_TYPES[p[0]]) for p in props])
                block = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
                offset += count * dtype.itemsize
                values[name] = {p[-1]: block[p[-1]] for p in props}
    vertex = values.get("vertex")
    face = values.get("face")
    if vertex is None or face is None:
        raise InputError(f"{path}: a PLY mesh needs 'vertex' and 'face' elements")
    points = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float64)
    list_key = "vertex_indices" if "vertex_indices" in face else "vertex_index"
    polygons = face[list_key]
    triangles = _fan(polygons)
    object_of_face = np.repeat(np.asarray(face["object"], dtype=np.int64), _fan_counts(polygons)) \
        if "object" in face else np.zeros(len(triangles), dtype=np.int64)
    rgb = None
    if all(c in vertex for c in ("red", "green", "blue")):
        rgb = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1).astype(np.float64) / 255.0
    names = {int(m.group(1)): m.group(2) for c in comments if (m := re.match(r"object (\d+) (\S+)", c))}
    exact = {int(m.group(1)): tuple(float(x) for x in m.group(2).split())
             for c in comments if (m := re.match(r"object (\d+) \S+ color_rgb ([\d.eE+\- ]+)$", c))}
    parts: list[_Part] = []
    for obj in np.unique(object_of_face):
        tri = triangles[object_of_face == obj]
        used, local = np.unique(tri, return_inverse=True)
        color = exact.get(int(obj)) or (tuple(float(c) for c in rgb[used[0]]) if rgb is not None else None)
        parts.append((names.get(int(obj), ""), points[used], local.reshape(-1, 3), color))
    return parts


def _ply_binary_lists(path: Path, data: bytes, offset: int, count: int, props: list[tuple[str, ...]],
                      order: str) -> tuple[dict[str, NDArray[Any]], int]:
    """Read a binary PLY element with list properties; fast path when every list has length 3."""
    fixed: list[tuple[str, str]] = []
    for prop in props:
        if prop[0] == "list":
            fixed += [(prop[-1] + "#n", order + _PLY_TYPES[prop[1]]), *((f"{prop[-1]}#{i}", order + _PLY_TYPES[prop[2]])
                                                                        for i in range(3))]
        else:
            fixed.append((prop[-1], order + _PLY_TYPES[prop[0]]))
    dtype = np.dtype(fixed)
    if offset + count * dtype.itemsize <= len(data):
        block = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        if all(np.all(block[p[-1] + "#n"] == 3) for p in props if p[0] == "list"):
            out: dict[str, NDArray[Any]] = {}
            for prop in props:
                if prop[0] == "list":
                    out[prop[-1]] = np.stack([block[f"{prop[-1]}#{i}"] for i in range(3)], axis=1).astype(np.int64)
                else:
                    out[prop[-1]] = block[prop[-1]]
            return out, offset + count * dtype.itemsize
    # General case: walk the records.
    columns: dict[str, list[Any]] = {p[-1]: [] for p in props}
    for _ in range(count):
        for prop in props:
            if prop[0] == "list":
                size_type = np.dtype(order + _PLY_TYPES[prop[1]])
                item_type = np.dtype(order + _PLY_TYPES[prop[2]])
                n = int(np.frombuffer(data, dtype=size_type, count=1, offset=offset)[0])
                offset += size_type.itemsize
                columns[prop[-1]].append(np.frombuffer(data, dtype=item_type, count=n, offset=offset).astype(np.int64))
                offset += n * item_type.itemsize
            else:
                item_type = np.dtype(order + _PLY_TYPES[prop[0]])
                columns[prop[-1]].append(np.frombuffer(data, dtype=item_type, count=1, offset=offset)[0])
                offset += item_type.itemsize
    return {k: (np.array(v, dtype=object) if any(p[-1] == k and p[0] == "list" for p in props) else np.array(v))
            for k, v in columns.items()}, offset


def _fan_counts(polygons: NDArray[Any]) -> NDArray[np.int64]:
    if polygons.dtype != object:
        return np.full(len(polygons), polygons.shape[1] - 2, dtype=np.int64)
    return np.array([max(len(p) - 2, 0) for p in polygons], dtype=np.int64)


def _fan(polygons: NDArray[Any]) -> NDArray[np.int64]:
    """Triangles (M, 3) from polygons (an (F, 3) array, or an object array of index lists)."""
    if polygons.dtype != object:
        if polygons.shape[1] == 3:
            return np.asarray(polygons, dtype=np.int64)
        polygons = np.array([list(p) for p in polygons], dtype=object)
    tris = [[p[0], p[i], p[i + 1]] for p in polygons for i in range(1, len(p) - 1)]
    return np.array(tris, dtype=np.int64).reshape(-1, 3)


def _read_3mf(path: Path) -> list[_Part]:
    with zipfile.ZipFile(path) as z:
        model_name = next((n for n in z.namelist() if n.lower().endswith(".model") and n.startswith("3D/")), None)
        if model_name is None:
            raise InputError(f"{path}: a 3MF package without a 3D/*.model part")
        root = ElementTree.fromstring(z.read(model_name))
    ns = {"m": _3MF_CORE}
    unit = root.get("unit", "millimeter")
    scale = {"micron": 0.001, "millimeter": 1.0, "centimeter": 10.0, "inch": 25.4, "foot": 304.8, "meter": 1000.0}
    if unit not in scale:
        raise InputError(f"{path}: unknown 3MF unit {unit!r}")
    colors: dict[tuple[str, int], tuple[float, float, float]] = {}
    for group in root.iterfind("m:resources/m:basematerials", ns):
        for index, base in enumerate(group.iterfind("m:base", ns)):
            value = base.get("displaycolor", "#FFFFFF").lstrip("#")
            colors[(group.get("id", ""), index)] = tuple(int(value[i:i + 2], 16) / 255.0 for i in (0, 2, 4))
    parts: list[_Part] = []
    for obj in root.iterfind("m:resources/m:object", ns):
        mesh = obj.find("m:mesh", ns)
        if mesh is None:
            continue
        vertices = np.array([[float(v.get("x")), float(v.get("y")), float(v.get("z"))]
                             for v in mesh.iterfind("m:vertices/m:vertex", ns)], dtype=np.float64) * scale[unit]
        triangles = np.array([[int(t.get("v1")), int(t.get("v2")), int(t.get("v3"))]
                              for t in mesh.iterfind("m:triangles/m:triangle", ns)], dtype=np.int64)
        color = colors.get((obj.get("pid", ""), int(obj.get("pindex", "0"))))
        parts.append((obj.get("name", ""), vertices, triangles, color))
    return parts


def _read_vtk_polydata(path: Path) -> Any:
    """VTK XML PolyData; VTK's error reports (multi-line, on the terminal otherwise) are caught, and a
    damaged or truncated file is an InputError naming it."""
    import pyvista as pv
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    reader = vtkXMLPolyDataReader()
    with pv.vtk_verbosity("off"), pv.VtkErrorCatcher(raise_errors=False, send_to_logging=False) as caught:
        readable = bool(reader.CanReadFile(str(path)))
        if readable:
            reader.SetFileName(str(path))
            reader.Update()
    if not readable:
        raise InputError(f"{path}: not a VTK XML PolyData (.vtp) file")
    if caught.error_events or reader.GetErrorCode():
        reason = " ".join(str(caught.error_events[0].alert).split())[:120] if caught.error_events else "read error"
        raise InputError(f"{path}: not a readable VTP file ({reason})")
    return pv.wrap(reader.GetOutput())


def _read_vtp(path: Path) -> list[_Part]:
    import pyvista as pv

    poly = _read_vtk_polydata(path)
    if not isinstance(poly, pv.PolyData):
        raise InputError(f"{path}: not VTK PolyData")
    tri = poly.triangulate()
    if tri.n_cells == 0:
        return []
    faces = np.asarray(tri.faces).reshape(-1, 4)[:, 1:].astype(np.int64)
    points = np.asarray(tri.points, dtype=np.float64)
    objects = np.asarray(tri.cell_data["object"], dtype=np.int64) if "object" in tri.cell_data else \
        np.zeros(len(faces), dtype=np.int64)
    names = list(tri.field_data["names"]) if "names" in tri.field_data else []
    if "names_json" in tri.field_data:
        try:
            exact = json.loads(str(tri.field_data["names_json"][0]))
        except (ValueError, IndexError):
            exact = None
        if isinstance(exact, list) and len(exact) == len(names) and all(isinstance(n, str) for n in exact):
            names = exact
    exact = np.asarray(tri.field_data["color_rgb"], dtype=float).reshape(-1, 3) if "color_rgb" in tri.field_data \
        else None
    rgb = np.asarray(tri.point_data["RGB"], dtype=float) / 255.0 if "RGB" in tri.point_data else None
    parts: list[_Part] = []
    for obj in np.unique(objects):
        t = faces[objects == obj]
        used, local = np.unique(t, return_inverse=True)
        color = None
        if exact is not None and obj < len(exact):
            color = tuple(float(c) for c in exact[obj])
        elif rgb is not None:
            color = tuple(float(c) for c in rgb[used[0]])
        parts.append((str(names[obj]) if obj < len(names) else "", points[used], local.reshape(-1, 3), color))
    return parts
