"""Segment edits (``workstation.segment_edits``) on analytic phantoms: oblique, anisotropic grids, LPS mm."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from segmentation.labels import empty_label_map, set_segment
from workstation import segment_edits as edits
from workstation.errors import InputError
from workstation.geometry import apply_affine
from workstation.model import LabelMap, Volume

SPACING = np.array([0.7, 0.9, 1.6])  # x, y, z (mm) along i, j, k
CENTER = np.array([10.0, -20.0, 35.0])  # LPS mm
R = 12.0


@pytest.fixture(scope="module")
def volume() -> Volume:
    """A tilted, anisotropic grid around CENTER; intensity 100 inside a sphere of radius R, 0 outside."""
    shape = (40, 60, 70)
    direction = Rotation.from_euler("xyz", [12, -8, 20], degrees=True).as_matrix()
    half = direction @ (SPACING * np.array(shape[::-1]) / 2)
    empty = Volume.from_geometry(np.zeros(shape, np.int16), spacing_mm=SPACING, origin_lps=CENTER - half,
                                 direction=direction, modality="CT")
    return empty.with_array(np.where(_radius(empty) <= R, 100, 0).astype(np.int16))


def _lps(grid: Volume | LabelMap) -> np.ndarray:
    k, j, i = np.meshgrid(*(np.arange(n) for n in grid.array.shape), indexing="ij")
    ijk1 = np.stack([i, j, k, np.ones_like(i)], -1).astype(float)
    return (ijk1 @ np.asarray(grid.ijk_to_lps, dtype=float).T)[..., :3]


def _radius(grid: Volume | LabelMap, center: np.ndarray = CENTER) -> np.ndarray:
    return np.linalg.norm(_lps(grid) - center, axis=-1)


def _ml(label_map: LabelMap, name: str) -> float:
    return float(label_map.mask(name).sum()) * float(np.prod(SPACING)) / 1000.0


def _sphere_ml(radius_mm: float) -> float:
    return 4.0 / 3.0 * np.pi * radius_mm**3 / 1000.0


@pytest.fixture(scope="module")
def ball(volume: Volume) -> LabelMap:
    """Label map with segment 'ball' (the sphere of radius R) and an empty one, 'other'."""
    labels = set_segment(empty_label_map(volume), _radius(volume) <= R, name="ball")
    return edits.add_segment(labels, "other")


def test_paint_and_erase_are_balls_in_mm(ball: LabelMap) -> None:
    point = CENTER + [0.0, 0.0, 0.0]
    painted = edits.paint(ball, "other", center_lps=point, radius_mm=6.0)
    assert _ml(painted, "other") == pytest.approx(_sphere_ml(6.0), rel=0.05)
    inside = _radius(painted) <= 6.0 - 1.0
    assert painted.mask("other")[inside].all() and not painted.mask("ball")[inside].any()  # taken over
    kept = edits.paint(ball, "other", center_lps=point, radius_mm=6.0, overwrite=False)
    assert _ml(kept, "other") == 0.0  # every voxel of the dab was already 'ball'
    erased = edits.paint(ball, "ball", center_lps=point, radius_mm=6.0, erase=True)
    assert _ml(erased, "ball") == pytest.approx(_ml(ball, "ball") - _sphere_ml(6.0), rel=0.02)
    assert np.array_equal(ball.mask("ball"), _radius(ball) <= R)  # the input is unchanged


HALF_DIAGONAL = 0.5 * float(np.linalg.norm(SPACING))  # farthest a point lies from its voxel's centre


def _slice_disc_center(grid: LabelMap, k: int) -> tuple[np.ndarray, float]:
    """The point of voxel slice ``k`` nearest CENTER (LPS mm) and the sphere's radius in that slice."""
    affine = np.asarray(grid.ijk_to_lps, dtype=float)
    k_center = (np.linalg.inv(affine) @ np.append(CENTER, 1.0))[2]
    return CENTER + (k - k_center) * affine[:3, 2], float(np.sqrt(R**2 - ((k - k_center) * SPACING[2]) ** 2))


def test_a_2d_brush_paints_one_voxel_slice_and_fill_between_slices_rebuilds_the_sphere(ball: LabelMap) -> None:
    assert edits.slice_axis(ball, "axial") == 0  # the tilted grid's k axis is nearest the patient's z
    point, radius = _slice_disc_center(ball, 20)
    disc = edits.paint(ball, "other", center_lps=point, radius_mm=radius, plane="axial").mask("other")
    np.testing.assert_array_equal(np.flatnonzero(disc.any(axis=(1, 2))), [20])
    assert disc.sum() * SPACING[0] * SPACING[1] == pytest.approx(np.pi * radius**2, rel=0.05)
    outlined = ball
    kept = range(13, 27, 3)  # the sphere spans slices 19.5 +- 7.5 (R / 1.6 mm)
    for k in kept:
        point, radius = _slice_disc_center(ball, k)
        outlined = edits.paint(outlined, "other", center_lps=point, radius_mm=radius, plane="axial")
    filled = edits.fill_between_slices(outlined, "other")
    np.testing.assert_array_equal(filled.array, edits.fill_between_slices(outlined, "other", plane="axial").array)
    region = slice(kept[0], kept[-1] + 1)
    truth = (_radius(ball) <= R)[region]
    got = filled.mask("other")[region]
    assert 2 * (got & truth).sum() / (got.sum() + truth.sum()) >= 0.95
    assert got.sum() == pytest.approx(truth.sum(), rel=0.05)
    with pytest.raises(InputError, match="no empty slices between outlined axial slices"):
        edits.fill_between_slices(filled, "other", plane="axial")
    with pytest.raises(InputError, match="--plane 'oblique'"):
        edits.fill_between_slices(outlined, "other", plane="oblique")


def test_an_outline_drawn_in_one_slice_is_filled_there(ball: LabelMap) -> None:
    center, radius = _slice_disc_center(ball, 20)
    affine = np.asarray(ball.ijk_to_lps, dtype=float)
    u, v = affine[:3, 0] / SPACING[0], affine[:3, 1] / SPACING[1]  # the tilted slice's in-plane directions
    angles = np.linspace(0.0, 2 * np.pi, 48, endpoint=False)
    corners = center + radius * (np.outer(np.cos(angles), u) + np.outer(np.sin(angles), v))
    drawn = edits.draw(ball, "other", points_lps=corners, plane="axial").mask("other")
    np.testing.assert_array_equal(np.flatnonzero(drawn.any(axis=(1, 2))), [20])
    # drawn a little off the tilted slice (clicks in a view of the patient's axial plane): projected on it
    shifted = edits.draw(ball, "other", points_lps=corners + [0.0, 0.0, 0.4], plane="axial").mask("other")
    np.testing.assert_array_equal(np.flatnonzero(shifted.any(axis=(1, 2))), [20])
    assert 2 * (drawn & shifted).sum() / (drawn.sum() + shifted.sum()) > 0.97
    polygon_mm2 = 24 * radius**2 * np.sin(2 * np.pi / 48)
    assert drawn.sum() * SPACING[0] * SPACING[1] == pytest.approx(polygon_mm2, rel=0.03)
    in_plane = np.linalg.norm(_lps(ball)[20] - center, axis=-1)
    assert drawn[20][in_plane <= radius - HALF_DIAGONAL].all() and not drawn[20][in_plane > radius].any()
    brushed = edits.paint(ball, "other", center_lps=center, radius_mm=radius, plane="axial").mask("other")
    assert 2 * (drawn & brushed).sum() / (drawn.sum() + brushed.sum()) > 0.97  # the 2-D brush's disc
    erased = edits.draw(ball, "ball", points_lps=corners, plane="axial", erase=True)
    np.testing.assert_array_equal(erased.mask("ball"), ball.mask("ball") & ~drawn)
    # centres on the outline: the same voxels whichever way round it is drawn, so erase undoes draw
    square = [apply_affine(affine, [i, j, 20]) for i, j in ((30, 20), (40, 20), (40, 32), (30, 32))]
    drawn_square = edits.draw(ball, "other", points_lps=square, plane="axial")
    np.testing.assert_array_equal(drawn_square.array, edits.draw(ball, "other", points_lps=square[::-1],
                                                                 plane="axial").array)
    # half-open: columns 30-39 and rows 20-31, but for the corners' round-off through the tilted affine
    assert 10 * 12 - 12 <= drawn_square.mask("other").sum() <= 10 * 12
    undone = edits.draw(drawn_square, "other", points_lps=square[::-1], plane="axial", erase=True)
    assert not undone.mask("other").any()
    with pytest.raises(InputError, match="at least 3"):
        edits.draw(ball, "other", points_lps=corners[:2], plane="axial")
    with pytest.raises(InputError, match="encloses no voxel centre"):
        edits.draw(ball, "other", points_lps=[center, center + u, center + 2 * u], plane="axial")
    with pytest.raises(InputError, match="encloses no voxel centre"):
        edits.draw(ball, "other", points_lps=corners + [500.0, 0.0, 0.0], plane="axial")  # beside the volume
    with pytest.raises(InputError, match="--plane 'oblique'"):
        edits.draw(ball, "other", points_lps=corners, plane="oblique")


def test_scissors_cut_along_the_view_normal_through_every_slice(ball: LabelMap) -> None:
    center, _ = _slice_disc_center(ball, 20)
    # a rectangle over one half of the sphere, drawn in an axial view (a plane of constant z: the
    # app's views are patient-aligned) at 30 degrees to the x axis; the grid is tilted against it
    e1, e2 = np.array([np.cos(0.52), np.sin(0.52), 0.0]), np.array([-np.sin(0.52), np.cos(0.52), 0.0])
    edge = 0.3  # mm: the edge passes off the disc's centre
    corners = [center + a * e1 + b * e2 for a, b in ((edge, -2 * R), (2 * R, -2 * R), (2 * R, 2 * R), (edge, 2 * R))]
    cut = edits.scissors(ball, "ball", points_lps=corners, plane="axial").mask("ball")
    # truth: a voxel is cut when its centre, moved along z into the drawn plane, falls in the rectangle
    rel = _lps(ball) - center
    a, b = rel @ e1, rel @ e2
    under = (a >= edge) & (a <= 2 * R) & (np.abs(b) <= 2 * R)
    clear = np.abs(a - edge) > 1e-6  # no centre of the sphere on the outline's edge
    before = ball.mask("ball")
    removed = before & ~cut
    assert not np.any(cut & ~before)
    assert clear[before].all()
    np.testing.assert_array_equal(removed, before & under)
    assert np.array_equal(np.flatnonzero(removed.any(axis=(1, 2))), np.flatnonzero(before.any(axis=(1, 2))))
    # the grid's k axis is tilted from z: sweeping along it instead would cut other voxels
    k_axis = np.asarray(ball.ijk_to_lps, dtype=float)[:3, 2] / SPACING[2]
    assert np.degrees(np.arccos(abs(k_axis[2]))) > 10.0
    kept = edits.scissors(ball, "ball", points_lps=corners, plane="axial", keep_inside=True).mask("ball")
    np.testing.assert_array_equal(kept, removed)
    # a loop running far outside the volume is clipped to it: the same cut
    wide = [center + a * e1 + b * e2 for a, b in ((edge, -500.0), (500.0, -500.0), (500.0, 500.0), (edge, 500.0))]
    np.testing.assert_array_equal(edits.scissors(ball, "ball", points_lps=wide, plane="axial").mask("ball"),
                                  edits.scissors(ball, "ball", points_lps=corners, plane="axial").mask("ball"))
    with pytest.raises(InputError, match="empty, nothing to edit"):
        edits.scissors(ball, "other", points_lps=corners, plane="axial")
    with pytest.raises(InputError, match="at least 3"):
        edits.scissors(ball, "ball", points_lps=corners[:2], plane="axial")


def test_level_tracing_outlines_the_structure_whose_edge_the_point_is_on(volume: Volume, ball: LabelMap) -> None:
    # the sphere's edge blurred over 4 mm: 100 HU inside R - 2 mm, 0 outside R + 2 mm, linear between
    radius = _radius(volume)
    blurred = volume.with_array((np.clip(R + 2.0 - radius, 0.0, 4.0) * 25.0).astype(np.float32))
    center, disc_radius = _slice_disc_center(ball, 20)
    affine = np.asarray(ball.ijk_to_lps, dtype=float)
    u = affine[:3, 0] / SPACING[0]
    edge = center + disc_radius * u  # on the iso-contour at half height
    traced = edits.level_trace(ball, blurred, "other", point_lps=edge, plane="axial").mask("other")
    np.testing.assert_array_equal(np.flatnonzero(traced.any(axis=(1, 2))), [20])
    disc = radius[20] <= disc_radius
    assert 2 * (traced[20] & disc).sum() / (traced[20].sum() + disc.sum()) > 0.95
    # a dark structure in bright surroundings, from inside it
    inverted = volume.with_array(100 - volume.array)
    dark = edits.level_trace(ball, inverted, "other", point_lps=center, plane="axial", darker=True).mask("other")
    np.testing.assert_array_equal(dark[20], ball.mask("ball")[20])
    erased = edits.level_trace(ball, volume, "ball", point_lps=center, plane="axial", erase=True)
    assert not erased.mask("ball")[20].any() and np.array_equal(erased.mask("ball")[19], ball.mask("ball")[19])
    with pytest.raises(InputError, match="outside the volume"):
        edits.level_trace(ball, volume, "other", point_lps=[500.0, 0.0, 0.0], plane="axial")
    with_nan = volume.with_array(np.where(radius <= 2.0, np.nan, volume.array.astype(np.float32)))
    with pytest.raises(InputError, match="no finite value there"):
        edits.level_trace(ball, with_nan, "other", point_lps=CENTER, plane="axial")


def test_grow_and_shrink_use_distances_in_mm(ball: LabelMap) -> None:
    """A voxel joins when its centre lies within the margin of a voxel centre of the segment (Euclidean, in mm)."""
    distance = _radius(ball)
    grown = edits.morph(ball, "ball", operation="grow", mm=3.0).mask("ball")
    assert grown[distance <= R + 3.0 - HALF_DIAGONAL].all() and not grown[distance > R + 3.0].any()
    shrunk = edits.morph(ball, "ball", operation="shrink", mm=3.0).mask("ball")
    assert shrunk[distance < R - 3.0].all() and not shrunk[distance > R - 3.0 + 2 * HALF_DIAGONAL].any()


def test_hollow_makes_a_shell_of_the_thickness(ball: LabelMap) -> None:
    distance = _radius(ball)
    inside = edits.hollow(ball, "ball", thickness_mm=3.0).mask("ball")
    assert not inside[distance < R - 3.0].any() and inside[(distance > R - 3.0 + 2 * HALF_DIAGONAL)
                                                            & ball.mask("ball")].all()
    outside = edits.hollow(ball, "ball", thickness_mm=3.0, inside=False).mask("ball")
    assert not (outside & ball.mask("ball")).any() and not outside[distance > R + 3.0].any()
    assert outside[(distance > R + HALF_DIAGONAL) & (distance <= R + 3.0 - HALF_DIAGONAL)].all()


def test_fill_holes_and_smooth(ball: LabelMap) -> None:
    cavity = edits.paint(ball, "ball", center_lps=CENTER, radius_mm=4.0, erase=True)
    assert _ml(edits.fill_holes(cavity, "ball"), "ball") == pytest.approx(_ml(ball, "ball"), rel=1e-9)
    notched = edits.cut_cylinder(ball, "ball", start_lps=CENTER + [0, 0, R - 2], end_lps=CENTER + [0, 0, R + 5],
                                 radius_mm=1.5)
    assert _ml(notched, "ball") < _ml(ball, "ball")
    smoothed = edits.morph(notched, "ball", operation="smooth", mm=2.5)
    assert _ml(smoothed, "ball") == pytest.approx(_ml(ball, "ball"), rel=0.02)  # the notch is closed


def test_cuts_remove_exactly_their_side(ball: LabelMap) -> None:
    normal = np.array([1.0, 1.0, 0.0])
    cut = edits.cut_plane(ball, "ball", origin_lps=CENTER, normal_lps=normal)
    assert _ml(cut, "ball") == pytest.approx(_ml(ball, "ball") / 2, rel=0.03)
    side = (_lps(cut) - CENTER) @ normal
    assert not cut.mask("ball")[side > 1e-6].any() and cut.mask("ball")[(side < -1e-6) & ball.mask("ball")].all()
    start, end = CENTER - [0, 0, 30], CENTER + [0, 0, 30]
    drilled = edits.cut_cylinder(ball, "ball", start_lps=start, end_lps=end, radius_mm=3.0)
    radial = np.linalg.norm((_lps(drilled) - CENTER)[..., :2], axis=-1)
    assert not drilled.mask("ball")[radial <= 3.0].any()
    assert drilled.mask("ball")[(radial > 3.0) & ball.mask("ball")].all()
    assert _ml(ball, "ball") - _ml(drilled, "ball") == pytest.approx(np.pi * 9.0 * 2 * R / 1000, rel=0.1)


def test_islands(volume: Volume) -> None:
    big, small = _radius(volume) <= 8.0, _radius(volume, CENTER + [16, 0, 0]) <= 4.0
    labels = set_segment(empty_label_map(volume), big | small, name="pieces")
    assert _ml(edits.keep_largest(labels, "pieces"), "pieces") == pytest.approx(_sphere_ml(8.0), rel=0.05)
    kept = edits.keep_at_points(labels, "pieces", points_lps=[CENTER + [16, 0, 0]])
    assert np.array_equal(kept.mask("pieces"), small)
    assert np.array_equal(edits.remove_small(labels, "pieces", min_ml=0.5).mask("pieces"), big)
    assert np.array_equal(edits.keep_largest(labels, "pieces", n=2).mask("pieces"), big | small)


def test_combinations_with_margins(volume: Volume) -> None:
    organ = _radius(volume) <= R
    lesion = _radius(volume, CENTER + [4, 0, 0]) <= 3.0
    labels = set_segment(set_segment(empty_label_map(volume), organ, name="organ"), lesion, name="lesion")
    assert not (labels.mask("organ") & labels.mask("lesion")).any()  # one label per voxel
    zone = edits.combine(labels, "organ", operation="intersect", others=["lesion"], margin_mm=5.0)
    near = _radius(volume, CENTER + [4, 0, 0])
    assert zone.mask("organ")[(near <= 7.0) & ~lesion].all() and not zone.mask("organ")[near > 9.0].any()
    minus = edits.combine(labels, "organ", operation="subtract", others=["lesion"], margin_mm=5.0)
    assert not minus.mask("organ")[near <= 7.0].any() and minus.mask("organ")[(near > 9.0) & organ].all()
    merged = edits.combine(labels, "organ", operation="union", others=["lesion"])
    assert np.array_equal(merged.mask("organ"), organ | lesion) and not merged.mask("lesion").any()
    assert np.array_equal(edits.combine(labels, "organ", operation="subtract", others=["lesion"]).mask("organ"),
                          labels.mask("organ"))  # disjoint segments: nothing to subtract without a margin


def test_threshold_and_region_growing_from_the_image(volume: Volume, ball: LabelMap) -> None:
    by_range = edits.threshold_segment(ball, volume, "bright", lower=50, upper=200)
    assert np.array_equal(by_range.mask("bright"), volume.array >= 50) and not by_range.mask("ball").any()
    grown = edits.region_grow_segment(ball, volume, "grown", points_lps=[CENTER], lower=50, upper=200,
                                      overwrite=False)
    assert not grown.mask("grown").any()  # every voxel in range already belongs to 'ball'
    replaced = edits.region_grow_segment(ball, volume, "grown", points_lps=[CENTER])  # confidence connected
    assert np.array_equal(replaced.mask("grown"), volume.array == 100)


def test_segment_bookkeeping(ball: LabelMap) -> None:
    renamed = edits.rename_segment(ball, "ball", new_name="sphere")
    assert renamed.segment("sphere").value == ball.segment("ball").value
    assert edits.recolor_segment(ball, "ball", color_rgb=(1, 0, 0)).segment("ball").color_rgb == (1.0, 0.0, 0.0)
    assert [s.name for s in edits.remove_segment(ball, "other").segments] == ["ball"]
    smoothed = edits.smooth_all(ball, radius_mm=1.5)
    assert _ml(smoothed, "ball") == pytest.approx(_ml(ball, "ball"), rel=0.03)


@pytest.mark.parametrize(("call", "message"), [
    (lambda m: edits.morph(m, "liver", operation="grow", mm=2), "segment 'liver': not in the label map"),
    (lambda m: edits.morph(m, "ball", operation="grow", mm=-1), "--mm: must be a finite number > 0"),
    (lambda m: edits.add_segment(m, "ball"), "already used"),
    (lambda m: edits.rename_segment(m, "ball", new_name="other"), "already used"),
    (lambda m: edits.recolor_segment(m, "ball", color_rgb=(2, 0, 0)), "between 0 and 1"),
    (lambda m: edits.paint(m, "ball", center_lps=CENTER + 500, radius_mm=2), "outside the volume"),
    (lambda m: edits.keep_largest(m, "other"), "segment 'other': empty"),
    (lambda m: edits.morph(m, "other", operation="grow", mm=2), "segment 'other': empty"),
    (lambda m: edits.keep_at_points(m, "ball", points_lps=[CENTER + [0, 0, R + 5]]), "no piece of segment 'ball'"),
    (lambda m: edits.cut_plane(m, "ball", origin_lps=CENTER, normal_lps=(0, 0, 0)), "non-zero"),
    (lambda m: edits.cut_cylinder(m, "ball", start_lps=CENTER, end_lps=CENTER, radius_mm=2), "must differ"),
    (lambda m: edits.combine(m, "ball", operation="subtract", others=["ball"]), "with itself"),
    (lambda m: edits.combine(m, "ball", operation="intersect", others=["other"], margin_mm=-1), "--margin-mm"),
])
def test_bad_parameters_are_one_line_input_errors(ball: LabelMap, call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message) as caught:
        call(ball)
    assert "\n" not in str(caught.value)
