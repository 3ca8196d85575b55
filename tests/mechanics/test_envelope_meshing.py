"""Multi-region tet meshes at element size with fTetWild: analytic shapes and the real liver + vena cava."""

from __future__ import annotations

import numpy as np
import pytest
import pyvista as pv

from mechanics.envelope_meshing import tetrahedralize_regions_envelope
from mechanics.meshing import enclosed_volume_mm3, tetrahedralize_regions
from mechanics.quality import tet_quality
from mechanics.selection import interface_faces
from tests.conftest import shared_path
from workstation.errors import InputError
from workstation.model import SurfaceMesh


def _surface(poly: pv.PolyData, name: str) -> SurfaceMesh:
    poly = poly.triangulate()
    return SurfaceMesh(np.asarray(poly.points, dtype=float), poly.regular_faces.astype(np.int64), name=name)


def _sphere_and_cavity_box() -> tuple[SurfaceMesh, SurfaceMesh]:
    """A fine sphere (r 12 mm, ~1 mm triangles) and a 60 mm box with that sphere as a cavity: a shared interface."""
    inner = _surface(pv.Icosphere(radius=12.0, nsub=5), "inner")
    outer = _surface(pv.Box(bounds=(-30, 30, -30, 30, -30, 30), level=8), "box")
    shell = SurfaceMesh(np.vstack([outer.vertices_lps, inner.vertices_lps]),
                        np.vstack([outer.triangles, inner.triangles[:, ::-1] + outer.n_vertices]), name="shell")
    return shell, inner


def test_a_fine_shared_interface_is_meshed_at_element_size_and_conforms() -> None:
    shell, inner = _sphere_and_cavity_box()
    sphere_mm3 = enclosed_volume_mm3(inner.vertices_lps, inner.triangles)
    mesh = tetrahedralize_regions_envelope([shell, inner], [7, 3], size_mm=6.0, epsilon_mm=0.5, name="two")
    volumes = mesh.signed_volumes_mm3()
    assert volumes.min() > 0 and set(np.unique(mesh.region_ids)) == {3, 7}
    # 6 mm chords on a 12 mm sphere cut its caps (sagitta 0.4 mm, inside the 0.5 mm envelope): about 3% of it
    assert volumes[mesh.region_ids == 3].sum() == pytest.approx(sphere_mm3, rel=0.05)
    assert volumes[mesh.region_ids == 7].sum() == pytest.approx(60.0**3 - sphere_mm3, rel=0.01)
    # One mesh: the interface is made of faces shared by tets of both regions, and lies on the sphere.
    faces = interface_faces(mesh, 3, 7)
    radius = np.linalg.norm(mesh.points_lps[np.unique(faces)], axis=1)
    assert len(faces) > 50 and np.abs(radius - 12.0).max() <= 0.5 + 0.1
    area = np.linalg.norm(np.cross(*(mesh.points_lps[faces[:, k]] - mesh.points_lps[faces[:, 0]] for k in (1, 2))),
                          axis=1).sum() / 2
    assert area == pytest.approx(4 * np.pi * 12.0**2, rel=0.05)
    quality = tet_quality(mesh)
    assert quality.n_inverted == 0 and quality.min_dihedral_deg > 5.0
    # TetGen must keep the 1 mm interface triangles: far more tets for the same size.
    fine = tetrahedralize_regions([shell, inner], [7, 3], size_mm=6.0)
    assert mesh.n_tets < 0.5 * fine.n_tets, (mesh.n_tets, fine.n_tets)
    assert mesh.provenance["meshing"]["mesher"] == "fTetWild"
    assert all(r["relative_error"] < 0.05 for r in mesh.provenance["meshing"]["regions"])


def test_an_inclusion_goes_to_the_innermost_surface() -> None:
    inner = _surface(pv.Icosphere(radius=10.0, nsub=4), "inner")
    outer = _surface(pv.Box(bounds=(-25, 25, -25, 25, -25, 25), level=4), "outer")
    mesh = tetrahedralize_regions_envelope([outer, inner], [1, 2], size_mm=5.0, epsilon_mm=0.4)
    volumes = mesh.signed_volumes_mm3()
    inner_mm3 = enclosed_volume_mm3(inner.vertices_lps, inner.triangles)
    assert volumes[mesh.region_ids == 2].sum() == pytest.approx(inner_mm3, rel=0.04)
    # the box's region holds its volume minus the inclusion's (its outer faces are offset to keep that)
    assert volumes[mesh.region_ids == 1].sum() == pytest.approx(50.0**3 - inner_mm3, rel=0.01)


@pytest.mark.parametrize(("call", "message"), [
    (lambda s: tetrahedralize_regions_envelope(s, [1, 2], size_mm=5.0, epsilon_mm=0.0), "epsilon_mm"),
    (lambda s: tetrahedralize_regions_envelope(s, [1, 1], size_mm=5.0, epsilon_mm=0.5), "must differ"),
    (lambda s: tetrahedralize_regions_envelope(s, [1, 2], size_mm=-1.0, epsilon_mm=0.5), "size_mm"),
])
def test_bad_parameters_are_input_errors(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message):
        call(list(_sphere_and_cavity_box()))


def test_real_liver_and_vena_cava_at_8_mm() -> None:
    """The case that motivated it: TetGen gave 156,250 tets, 0.3 deg and 226 slivers here (the note of issue 3)."""
    from segmentation.surface import label_map_surfaces
    from tests.segmentation.test_grow_from_seeds import _load_ct
    from workstation.io.volume_files import read_label_map
    from workstation.simulate_case import _surface_reduction

    ct = _load_ct(shared_path("ct-abdomen-20", "dicom"))
    reference = read_label_map(shared_path("ct-abdomen-20", "reference", "labels.nii.gz"), reference=ct)
    labels = reference.with_array(np.where(np.isin(reference.array, [5, 63]), reference.array, 0).astype(np.uint8))
    surfaces = label_map_surfaces(labels, segments=[5, 63], target_reduction=_surface_reduction(labels, 8.0))
    chosen = list(surfaces.values())
    mesh = tetrahedralize_regions_envelope(chosen, [5, 63], size_mm=8.0, epsilon_mm=1.0)
    quality = tet_quality(mesh)
    assert quality.n_inverted == 0 and quality.n_slivers == 0 and quality.min_dihedral_deg > 5.0
    assert mesh.n_tets < 40_000
    for region, surface in zip((5, 63), chosen, strict=True):
        expected = enclosed_volume_mm3(surface.vertices_lps, surface.triangles)
        assert quality.region_volumes_mm3[region] == pytest.approx(expected, rel=0.03)
    assert len(interface_faces(mesh, 5, 63)) > 10
