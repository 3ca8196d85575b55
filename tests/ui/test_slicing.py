"""Patient-aligned MPR slices: pixels sit where they say in LPS, in the radiological orientation."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ui.conftest import phantom_volume
from ui import slicing
from workstation.model.volume import Volume


@pytest.mark.parametrize("plane", slicing.PLANES)
def test_every_pixel_holds_the_voxel_at_its_lps_position(plane: str) -> None:
    volume = phantom_volume()
    cut = slicing.cut(volume, plane, (3.0, -1.0, 2.0))
    rows, cols = cut.pixels.shape
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    points = cut.origin_lps + c[..., None] * cut.col_step_lps + r[..., None] * cut.row_step_lps
    expected = volume.sample(points.reshape(-1, 3), order=0).reshape(rows, cols)
    np.testing.assert_array_equal(cut.pixels, expected)


def test_screen_directions_follow_the_radiological_convention() -> None:
    volume = phantom_volume()
    axial, coronal, sagittal = (slicing.cut(volume, p, (0.0, 0.0, 0.0)) for p in slicing.PLANES)
    # Screen right is the patient's left (+x) in axial and coronal; anterior (-y) is up in axial.
    assert axial.col_step_lps[0] > 0 and axial.row_step_lps[1] > 0
    assert coronal.col_step_lps[0] > 0 and coronal.row_step_lps[2] < 0  # superior up
    assert sagittal.col_step_lps[1] > 0 and sagittal.row_step_lps[2] < 0  # anterior left, superior up
    assert slicing.letters("axial") == ("R", "L", "A", "P")
    assert slicing.letters("coronal") == ("R", "L", "S", "I")
    assert slicing.letters("sagittal") == ("A", "P", "S", "I")
    # The bright block is right-anterior-superior: top-left in axial (at a superior level), top-left in coronal.
    top_axial = slicing.cut(volume, "axial", (0.0, 0.0, 20.0)).pixels
    assert top_axial[0, 0] == 1000 and top_axial[-1, -1] != 1000
    front_coronal = slicing.cut(volume, "coronal", (0.0, -20.0, 0.0)).pixels
    assert front_coronal[0, 0] == 1000 and front_coronal[-1, -1] != 1000
    right_sagittal = slicing.cut(volume, "sagittal", (-18.0, 0.0, 0.0)).pixels
    assert right_sagittal[0, 0] == 1000 and right_sagittal[-1, -1] != 1000


def test_flipped_storage_gives_the_same_picture() -> None:
    """A volume stored right-to-left and bottom-to-top (negative direction cosines) looks the same."""
    volume = phantom_volume()
    flipped_array = volume.array[::-1, :, ::-1]
    affine = volume.ijk_to_lps.copy()
    ni, nk = volume.size_ijk[0], volume.size_ijk[2]
    affine[:3, 3] = volume.ijk_to_lps_points([ni - 1, 0, nk - 1])
    affine[:3, 0] *= -1
    affine[:3, 2] *= -1
    flipped = Volume(array=flipped_array, ijk_to_lps=affine, modality="CT")
    for plane in slicing.PLANES:
        a = slicing.cut(volume, plane, (4.2, 2.3, -3.4))
        b = slicing.cut(flipped, plane, (4.2, 2.3, -3.4))
        np.testing.assert_array_equal(a.pixels, b.pixels)
        np.testing.assert_allclose(a.origin_lps, b.origin_lps)
        np.testing.assert_allclose(b.lps_at(*b.pixel_of((4.2, 2.3, -3.4))), a.lps_at(*a.pixel_of((4.2, 2.3, -3.4))))


def test_oblique_volume_is_resampled_in_patient_axes() -> None:
    volume = phantom_volume()
    angle = np.radians(12.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    affine = volume.ijk_to_lps.copy()
    affine[:3, :3] = rotation @ affine[:3, :3]
    oblique = Volume(array=volume.array, ijk_to_lps=affine, modality="CT")
    cut = slicing.cut(oblique, "axial", (0.0, 0.0, 0.0))
    assert cut.index == -1 and np.allclose(cut.col_step_lps / np.linalg.norm(cut.col_step_lps), (1, 0, 0))
    labels = slicing.cut(oblique, "axial", (0.0, 0.0, 0.0), array=(oblique.array == 300).astype(np.uint8),
                         labels=True)
    assert set(np.unique(labels.pixels)) <= {0, 1}
    # The sphere centre (physical position of voxel-space point (5, 0, 0) of the unrotated grid) is inside it.
    center = oblique.ijk_to_lps_points(volume.lps_to_ijk_points([5.0, 0.0, 0.0]))
    col, row = cut.pixel_of(center)
    assert labels.pixels[int(round(row)), int(round(col))] == 1


def test_window_and_overlay_colours() -> None:
    gray = slicing.window_to_gray(np.array([[-1000.0, 40.0, 1000.0]]), 40.0, 400.0)
    assert gray.tolist() == [[0, 127, 255]] or gray.tolist() == [[0, 128, 255]]
    rgba = slicing.overlay_rgba(np.array([[0, 2]], dtype=np.uint8), {2: (1.0, 0.0, 0.0)}, {2: 0.5})
    assert rgba[0, 0, 3] == 0 and tuple(rgba[0, 1]) == (255, 0, 0, 128)


def _oriented(volume: Volume, linear: np.ndarray) -> Volume:
    affine = np.array(volume.ijk_to_lps, dtype=float)
    affine[:3, :3] = linear @ affine[:3, :3]
    return Volume(array=volume.array, ijk_to_lps=affine, modality="CT")


def _rotation(axes: str, degrees: tuple[float, ...]) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler(axes, degrees, degrees=True).as_matrix()


# (orientation of the volume's i, j, k axes, and the volume axis each view must show: axial, coronal, sagittal)
_SAGITTAL_STACK = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # i: P, j: I, k: L (a flip)
ORIENTATIONS = {
    "tilted": (_rotation("zx", (20.0, 10.0)), (2, 1, 0)),
    "sagittal stack, tilted": (_rotation("z", (15.0,)) @ _SAGITTAL_STACK, (1, 0, 2)),
}


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("plane", slicing.PLANES)
def test_views_that_follow_an_oblique_volume_show_its_own_voxel_slices(plane: str, orientation: str) -> None:
    linear, shown_axes = ORIENTATIONS[orientation]
    oblique = _oriented(phantom_volume(), linear)
    normal_axis = shown_axes[slicing.PLANES.index(plane)]  # the ijk axis this view shows slices across
    patient_axis = {"axial": 2, "coronal": 1, "sagittal": 0}[plane]
    at_ijk = np.array([17.3, 12.6, 9.8])
    point = oblique.ijk_to_lps_points(at_ijk)
    cut = slicing.cut(oblique, plane, point, follow_volume=True)
    # every pixel centre is a voxel centre of one voxel slice, and holds that voxel's value
    rows, cols = cut.pixels.shape
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    lps = cut.origin_lps + c[..., None] * cut.col_step_lps + r[..., None] * cut.row_step_lps
    ijk = oblique.lps_to_ijk_points(lps.reshape(-1, 3))
    np.testing.assert_allclose(ijk, np.rint(ijk), atol=1e-6)
    i, j, k = np.rint(ijk).astype(int).T
    np.testing.assert_array_equal(cut.pixels.ravel(), oblique.array[k, j, i])
    assert set(np.rint(ijk[:, normal_axis]).astype(int)) == {cut.index} == {int(np.rint(at_ijk[normal_axis]))}
    assert rows * cols == np.prod(oblique.size_ijk) // oblique.size_ijk[normal_axis]  # the whole slice
    assert slicing.n_slices(oblique, plane, follow_volume=True) == oblique.size_ijk[normal_axis]
    # the edits made in this view use the same slices (segment_edits.slice_axis: array axes are k, j, i)
    from segmentation.labels import empty_label_map
    from workstation.segment_edits import slice_axis

    assert 2 - slice_axis(empty_label_map(oblique), plane) == normal_axis
    # the screen directions stay those of the patient plane, to within the volume's tilt
    resampled = slicing.cut(oblique, plane, point)
    for ours, theirs in ((cut.col_step_lps, resampled.col_step_lps), (cut.row_step_lps, resampled.row_step_lps)):
        cosine = ours @ theirs / np.linalg.norm(ours) / np.linalg.norm(theirs)
        assert cosine > np.cos(np.radians(25.0))
    # scrolling lands on the centre of the next voxel slice, along the volume's own axis, towards +axis
    moved = slicing.step(oblique, plane, point, 1, follow_volume=True)
    before, after = oblique.lps_to_ijk_points(point), oblique.lps_to_ijk_points(moved)
    assert abs(after[normal_axis] - np.rint(before[normal_axis])) == pytest.approx(1.0)
    np.testing.assert_allclose(np.delete(after, normal_axis), np.delete(before, normal_axis), atol=1e-9)
    assert moved[patient_axis] > point[patient_axis]
    # a volume parallel to the patient axes is shown the same way either way
    aligned = phantom_volume()
    a, b = (slicing.cut(aligned, plane, point, follow_volume=f) for f in (False, True))
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.index == b.index


def test_a_sheared_volume_is_resampled_even_when_the_views_follow_the_volume() -> None:
    """Its slices are parallelograms: drawn as rectangles, positions in them would be wrong."""
    sheared = np.eye(3)
    sheared[:, 2] = (0.0, np.sin(0.3), np.cos(0.3))  # k leans towards y: a gantry tilt kept as a shear
    volume = _oriented(phantom_volume(), sheared)
    for plane in slicing.PLANES:
        cut = slicing.cut(volume, plane, (0.0, 0.0, 0.0), follow_volume=True)
        assert cut.index == -1
        assert cut.lps_at(*cut.pixel_of((3.0, -2.0, 1.0))) == pytest.approx(
            np.where(np.arange(3) == {"axial": 2, "coronal": 1, "sagittal": 0}[plane], 0.0, [3.0, -2.0, 1.0]))


def test_edge_letters_name_the_patient_directions_the_screen_points_to() -> None:
    aligned = phantom_volume()
    for plane in slicing.PLANES:  # parallel to the patient axes: one letter per edge, as always
        assert slicing.cut(aligned, plane, (0.0, 0.0, 0.0)).edge_letters() == slicing.letters(plane)
        assert slicing.cut(_oriented(aligned, _rotation("z", (15.0,))), plane, (0.0, 0.0, 0.0)).edge_letters() \
            == slicing.letters(plane)  # resampled in the patient's planes
    # following a sagittal stack turned 15 deg about z, the axial view's columns run along its k axis,
    # (cos 15, sin 15, 0): left and leaning posterior; its rows along its i axis, (-sin 15, cos 15, 0)
    oblique = _oriented(aligned, _rotation("z", (15.0,)) @ _SAGITTAL_STACK)
    view = slicing.cut(oblique, "axial", (0.0, 0.0, 0.0), follow_volume=True)
    assert view.edge_letters() == ("RA", "LP", "AL", "PR")


def test_views_that_follow_the_gantry_tilted_phantom_show_and_edit_its_own_slices() -> None:
    """ct-tilt-phantom (real CT, gantry tilt 18.5 deg, resampled at load onto a grid turned by the
    tilt): in every view, the pixels are one voxel slice, and an outline drawn in the view fills
    exactly its pixels (segment_edits.draw, as the app's Draw tool calls it)."""
    from segmentation.editing import polygon_mask
    from segmentation.labels import empty_label_map
    from tests.conftest import shared_path
    from workstation import segment_edits
    from workstation.dicom.load import load_candidate
    from workstation.dicom.scan import scan_path

    volume = load_candidate(scan_path(shared_path("ct-tilt-phantom")).default())[0]
    assert slicing.is_oblique(volume)
    centre = volume.ijk_to_lps_points((np.array(volume.size_ijk) - 1) / 2.0)
    labels = segment_edits.add_segment(empty_label_map(volume), "outline")
    for plane in slicing.PLANES:
        view = slicing.cut(volume, plane, centre, follow_volume=True)
        rows, cols = view.pixels.shape
        corners = [(0.213 * cols, 0.311 * rows), (0.702 * cols, 0.257 * rows), (0.613 * cols, 0.797 * rows)]  # off-grid
        drawn = segment_edits.draw(labels, "outline", points_lps=[view.lps_at(c, r) for c, r in corners],
                                   plane=plane).mask("outline")
        shown = slicing.cut(volume, plane, centre, array=drawn.astype(np.uint8), labels=True, follow_volume=True)
        expected = polygon_mask([(r, c) for c, r in corners], (rows, cols))
        np.testing.assert_array_equal(shown.pixels.astype(bool), expected)
        assert drawn.sum() == expected.sum() > 1000, plane  # nothing filled outside the view
