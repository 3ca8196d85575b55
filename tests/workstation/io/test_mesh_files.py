"""Mesh files: round trips of STL/OBJ/PLY/3MF/VTP, colours, units, the LPS note, atomic writes, clear errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from workstation.errors import InputError, OutputError
from workstation.io.mesh_files import read_mesh, read_meshes, write_mesh
from workstation.model import SurfaceMesh


def sphere(center: tuple[float, float, float], radius: float, name: str, color: tuple[float, float, float]
           ) -> SurfaceMesh:
    import pyvista as pv

    poly = pv.Sphere(radius=radius, center=center, theta_resolution=24, phi_resolution=16).clean()
    return SurfaceMesh.from_pyvista(poly, name=name, segment=name, color_rgb=color,
                                    provenance={"source": "test", "coordinate_system": "LPS"})


@pytest.fixture(scope="module")
def meshes() -> tuple[SurfaceMesh, SurfaceMesh]:
    # Coordinates with many digits, far from the origin, negative: LPS millimetres of a real scan.
    liver = sphere((-112.123456789, 203.98765, -845.5), 40.0, "liver", (0.87, 0.51, 0.40))
    kidney = sphere((60.25, 180.5, -900.125), 12.5, "kidney left", (0.2, 0.6, 0.9))
    return liver, kidney


def same_geometry(a: SurfaceMesh, b: SurfaceMesh, atol: float) -> None:
    assert b.n_vertices == a.n_vertices and np.array_equal(b.triangles, a.triangles)
    assert np.abs(b.vertices_lps - a.vertices_lps).max() <= atol


@pytest.mark.parametrize(("suffix", "binary", "atol"), [(".ply", True, 0.0), (".ply", False, 0.0), (".vtp", True, 0.0),
                                                        (".obj", True, 1e-6), (".3mf", True, 1e-5)])
def test_round_trip_keeps_vertices_triangles_names_and_colours(tmp_path: Path, meshes: tuple, suffix: str,
                                                               binary: bool, atol: float) -> None:
    liver, kidney = meshes
    path = write_mesh([liver, kidney], tmp_path / f"organs{suffix}", binary=binary)
    back = read_meshes(path)
    assert [m.name.replace("_", " ") for m in back] == ["liver", "kidney left"]
    for original, loaded in zip((liver, kidney), back, strict=True):
        same_geometry(original, loaded, atol)
        assert np.allclose(loaded.color_rgb, original.color_rgb, atol=1 / 255)
        assert loaded.coordinate_system == "LPS" and loaded.provenance["units"] == "mm"
    merged = read_mesh(path)
    assert merged.n_triangles == liver.n_triangles + kidney.n_triangles


@pytest.mark.parametrize("binary", [True, False])
def test_stl_round_trip_to_float32_precision(tmp_path: Path, meshes: tuple, binary: bool) -> None:
    liver, _ = meshes
    path = write_mesh(liver, tmp_path / "liver.stl", binary=binary)
    back = read_mesh(path)
    assert back.n_vertices == liver.n_vertices and back.n_triangles == liver.n_triangles
    # STL stores float32 corners; shared vertices are rebuilt from exactly equal coordinates.
    assert np.array_equal(back.vertices_lps[back.triangles], liver.vertices_lps[liver.triangles].astype(np.float32))
    data = path.read_bytes()
    if binary:
        assert not data.startswith(b"solid") and b"LPS mm" in data[:80]
        assert len(data) == 84 + 50 * liver.n_triangles
    else:
        assert data.startswith(b"solid")


def test_every_format_names_lps_millimetres(tmp_path: Path, meshes: tuple) -> None:
    liver, _ = meshes
    assert "LPS" in (write_mesh(liver, tmp_path / "a.obj")).read_text().splitlines()[0]
    header = write_mesh(liver, tmp_path / "a.ply").read_bytes().split(b"end_header")[0].decode()
    assert "comment" in header and "LPS" in header and "units mm" in header
    assert "property uchar red" in header
    with zipfile.ZipFile(write_mesh(liver, tmp_path / "a.3mf")) as z:
        model = z.read("3D/3dmodel.model").decode()
    assert 'unit="millimeter"' in model and "LPS" in model and 'displaycolor="#DE8266FF"' in model
    import pyvista as pv

    poly = pv.read(str(write_mesh(liver, tmp_path / "a.vtp")))
    assert poly.field_data["coordinate_system"][0] == "LPS" and poly.field_data["units"][0] == "mm"
    assert json.loads(poly.field_data["provenance_json"][0])["source"] == "test"


def test_3mf_reads_back_with_lib3mf_in_millimetres_with_colours(tmp_path: Path, meshes: tuple) -> None:
    lib3mf = pytest.importorskip("lib3mf")
    liver, kidney = meshes
    path = write_mesh([liver, kidney], tmp_path / "print.3mf")
    wrapper = lib3mf.get_wrapper()
    model = wrapper.CreateModel()
    model.QueryReader("3mf").ReadFromFile(str(path))
    assert model.GetUnit() == lib3mf.ModelUnit.MilliMeter
    objects = model.GetMeshObjects()
    found = []
    while objects.MoveNext():
        obj = objects.GetCurrentMeshObject()
        resource, prop, has = obj.GetObjectLevelProperty()
        color = model.GetBaseMaterialGroupByID(resource).GetDisplayColor(prop)
        found.append((obj.GetName(), obj.GetVertexCount(), obj.GetTriangleCount(), obj.IsManifoldAndOriented(),
                      (color.Red, color.Green, color.Blue)))
        assert has
    assert found == [("liver", liver.n_vertices, liver.n_triangles, True, (222, 130, 102)),
                     ("kidney_left", kidney.n_vertices, kidney.n_triangles, True, (51, 153, 230))]


def test_inputs_are_not_modified(tmp_path: Path, meshes: tuple) -> None:
    liver, kidney = meshes
    before = [(m.vertices_lps.copy(), m.triangles.copy(), json.dumps(m.provenance)) for m in (liver, kidney)]
    for suffix in (".stl", ".obj", ".ply", ".3mf", ".vtp"):
        write_mesh([liver, kidney], tmp_path / f"x{suffix}")
    for m, (v, t, p) in zip((liver, kidney), before, strict=True):
        assert np.array_equal(m.vertices_lps, v) and np.array_equal(m.triangles, t) and json.dumps(m.provenance) == p


def test_writes_are_atomic(tmp_path: Path, meshes: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    liver, kidney = meshes
    target = tmp_path / "keep.ply"
    write_mesh(liver, target)
    old = target.read_bytes()
    import workstation.io.mesh_files as mesh_files

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(mesh_files, "_write_ply", broken)
    with pytest.raises(OutputError, match=r"keep\.ply.*disk full"):
        write_mesh(kidney, target)
    assert target.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.ply"]  # no temporary file left


def test_write_errors_are_one_line_and_name_the_file(tmp_path: Path, meshes: tuple) -> None:
    liver, _ = meshes
    for bad, pattern in ((tmp_path / "x.step", "unknown mesh format .step"),
                         (tmp_path / "missing" / "x.stl", "does not exist")):
        with pytest.raises(OutputError, match=pattern) as err:
            write_mesh(liver, bad)
        assert str(bad.name) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(OutputError, match="nothing to write"):
        write_mesh([], tmp_path / "x.stl")
    ras = SurfaceMesh(liver.vertices_lps, liver.triangles, coordinate_system="RAS")
    with pytest.raises(OutputError, match="RAS"):
        write_mesh(ras, tmp_path / "x.stl")


def test_read_errors_are_one_line_and_name_the_file(tmp_path: Path) -> None:
    cases = {
        "missing.stl": None,
        "short.stl": b"abc",
        "lying.stl": b"x" * 80 + (1000).to_bytes(4, "little") + b"\0" * 50,
        "junk.ply": b"not a ply",
        "badfmt.ply": b"ply\nformat binary_middle_endian 1.0\nend_header\n",
        "noface.obj": b"v 0 0 0\nv 1 0 0\n",
        "badindex.obj": b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n",
        "junk.3mf": b"PK not a zip",
        "x.step": b"",
    }
    for name, content in cases.items():
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        with pytest.raises(InputError) as err:
            read_mesh(path)
        message = str(err.value)
        assert name in message and "\n" not in message, message


def test_reads_foreign_files(tmp_path: Path) -> None:
    """Files from other tools: an ASCII PLY with a quad, an OBJ with quads, texture indices and negative indices."""
    ply = tmp_path / "quad.ply"
    ply.write_text("ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
                   "element face 1\nproperty list uchar int vertex_index\nend_header\n"
                   "0 0 0\n1 0 0\n1 1 0\n0 1 0\n4 0 1 2 3\n")
    m = read_mesh(ply)
    assert m.n_triangles == 2 and m.n_vertices == 4
    obj = tmp_path / "cube.obj"
    obj.write_text("# cube\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\ng part\nf 1/1 2/1 3/1 4/1\nf -4 -1 -2\n")
    m = read_mesh(obj)
    assert m.n_triangles == 3 and m.name == "part"
    stl = tmp_path / "ascii.stl"
    stl.write_text("solid tri\n facet normal 0 0 1\n  outer loop\n   vertex 0 0 0\n   vertex 1 0 0\n"
                   "   vertex 0 1 0\n  endloop\n endfacet\nendsolid tri\n")
    m = read_mesh(stl, name="given")
    assert (m.name, m.n_triangles, m.n_vertices) == ("given", 1, 3)


def test_surface_from_label_map_round_trips_watertight(tmp_path: Path) -> None:
    from segmentation.surface import label_to_surface, surface_quality
    from workstation.model import LabelMap, Segment

    array = np.zeros((12, 14, 16), np.uint8)
    array[3:9, 4:10, 5:12] = 4
    label_map = LabelMap(array, np.diag([0.8, 0.9, 2.0, 1.0]), (Segment(4, "block", (0.1, 0.8, 0.3)),))
    mesh = label_to_surface(label_map, "block")
    for suffix in (".stl", ".obj", ".ply", ".3mf", ".vtp"):
        back = read_mesh(write_mesh(mesh, tmp_path / f"block{suffix}"))
        q = surface_quality(back)
        assert q.watertight and q.manifold, suffix
        assert q.volume_mm3 == pytest.approx(surface_quality(mesh).volume_mm3, rel=1e-5), suffix
