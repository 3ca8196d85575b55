"""Off-screen pictures with known content: colours at known pixels, orientation, and cached images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.workstation.render.phantom import (
    TRAJECTORY,
    block_tet_mesh,
    phantom_case,
    phantom_volume,
    simulation_record,
)
from workstation.model import SurfaceMesh
from workstation.model.plan import Plan, Trajectory
from workstation.render.cameras import probe_view
from workstation.render.case_scene import SceneOptions, build_case_scene, camera_for
from workstation.render.mechanics_view import QUANTITIES, SimulationResult, deformed_surface, simulation_result
from workstation.render.mpr import standard_plane
from workstation.render.presets import BACKGROUND_RGB, VOLUME_PRESETS, WINDOW_LEVELS
from workstation.render.scene import RehearsalScene

CACHE = Path(__file__).parent / "cache"
BACKGROUND = np.round(np.array(BACKGROUND_RGB) * 255)
SIZE = (160, 120)


def sphere(center, radius, color, name) -> SurfaceMesh:
    import pyvista as pv

    return SurfaceMesh.from_pyvista(pv.Sphere(radius=radius, center=center), name=name, color_rgb=color)


def is_background(rgb) -> bool:
    return bool(np.abs(np.asarray(rgb, dtype=float) - BACKGROUND).max() <= 3)


def reddish(rgb) -> bool:
    r, g, b = (float(c) for c in rgb)
    return r > 80 and r > 2 * g and r > 2 * b


def test_red_sphere_in_the_middle_of_an_anterior_view() -> None:
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.add_surface(sphere((0, 0, 0), 10, (1.0, 0.0, 0.0), "ball"))
        scene.view("anterior")
        img = scene.image()
    assert img.shape == (SIZE[1], SIZE[0], 3)
    assert reddish(img[SIZE[1] // 2, SIZE[0] // 2])
    assert is_background(img[2, 2]) and is_background(img[-3, -3])


@pytest.mark.parametrize(("view", "left_on_screen_right"), [("anterior", True), ("posterior", False)])
def test_patient_left_side_is_where_the_view_says(view: str, left_on_screen_right: bool) -> None:
    # Red ball at the patient's left (+X), blue at the right (-X).
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.add_surface(sphere((30, 0, 0), 8, (1.0, 0.0, 0.0), "left-ball"))
        scene.add_surface(sphere((-30, 0, 0), 8, (0.0, 0.0, 1.0), "right-ball"))
        scene.view(view)
        img = scene.image().astype(int)
    row = img[SIZE[1] // 2]
    red_cols = np.flatnonzero((row[:, 0] > 80) & (row[:, 0] > 2 * row[:, 2]))
    blue_cols = np.flatnonzero((row[:, 2] > 80) & (row[:, 2] > 2 * row[:, 0]))
    assert red_cols.size and blue_cols.size
    assert (red_cols.mean() > blue_cols.mean()) == left_on_screen_right


def test_superior_view_has_anterior_at_the_top() -> None:
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.add_surface(sphere((0, -30, 0), 8, (0.0, 1.0, 0.0), "anterior-ball"))
        scene.add_surface(sphere((0, 30, 0), 8, (0.2, 0.2, 0.2), "posterior-ball"))
        scene.view("superior")
        img = scene.image().astype(int)
    column = img[:, SIZE[0] // 2]
    green_rows = np.flatnonzero((column[:, 1] > 80) & (column[:, 1] > 2 * column[:, 0]))
    assert green_rows.size and green_rows.mean() < SIZE[1] / 2


def test_probe_view_sees_the_target_in_the_centre() -> None:
    trajectory = Trajectory("path", (0, -80, 0), (0, 0, 0), tool_diameter_mm=2.0)
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        import pyvista as pv

        wall = pv.Plane(center=(0, 30, 0), direction=(0, -1, 0), i_size=400, j_size=400)
        scene.add_surface(SurfaceMesh.from_pyvista(wall, name="wall", color_rgb=(0.95, 0.92, 0.84)))
        scene.add_plan(Plan(trajectories=(trajectory,)), hide_tools=["path"], labels=False)
        scene.set_camera(probe_view(trajectory))
        img = scene.image()
    assert reddish(img[SIZE[1] // 2, SIZE[0] // 2])  # the red target marker straight ahead
    assert img[SIZE[1] // 2, 5].mean() > 120  # the light wall behind it fills the field


def test_tool_cylinder_in_its_colour_between_entry_and_target() -> None:
    trajectory = Trajectory("path", (0, 0, -40), (0, 0, 40), tool_diameter_mm=8.0)
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.add_plan(Plan(trajectories=(trajectory,)), labels=False)
        scene.include_bounds((-10, 10, -10, 10, -45, 45))
        scene.view("anterior")
        img = scene.image().astype(int)
    r, g, b = img[SIZE[1] // 2 - 10, SIZE[0] // 2]
    assert b > r + 40 and g > r  # tool blue-cyan
    assert reddish(img[int(SIZE[1] * 0.13), SIZE[0] // 2]) or reddish(img[int(SIZE[1] * 0.1), SIZE[0] // 2])


def test_axial_slice_follows_the_radiological_convention() -> None:
    volume = phantom_volume()
    array = np.array(volume.array)
    k, j, i = np.indices(array.shape)
    points = volume.ijk_to_lps_points(np.stack([i, j, k], -1).reshape(-1, 3)).reshape(*array.shape, 3)
    array[(points[..., 0] > 15) & (np.abs(points[..., 1]) < 8)] = 2000  # a bright bar at the patient's left
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.add_slice(volume.with_array(array), standard_plane(volume, "axial"),
                        window_level=WINDOW_LEVELS["bone"])
        scene.view("inferior")
        img = scene.image().astype(int)
    row = img[SIZE[1] // 2]
    bright = np.flatnonzero(row.mean(axis=1) > 230)
    assert bright.size and bright.min() > SIZE[0] / 2  # patient's left on the screen's right


def test_bone_volume_rendering_is_light_where_the_bone_is() -> None:
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.add_volume(phantom_volume(), VOLUME_PRESETS["bone"])
        scene.view("anterior")
        img = scene.image().astype(int)
    assert img[SIZE[1] // 2, SIZE[0] // 2].mean() > 120  # the bone sphere
    assert is_background(img[3, 3])  # air and soft tissue are transparent in the bone preset


def test_case_scene_builds_missing_surfaces_without_changing_the_case() -> None:
    case = phantom_case(with_plan=False)
    with build_case_scene(case, SceneOptions(), size=SIZE) as scene:
        scene.set_camera(camera_for(scene, case, "anterior"))
        img = scene.image().astype(int)
    assert case.meshes == {}
    centre = img[SIZE[1] // 2, SIZE[0] // 2]
    assert centre.mean() > 150 and centre[0] >= centre[2]  # light, warm bone colour
    assert is_background(img[SIZE[1] // 2, 3])


def test_mechanics_result_coloured_by_displacement_with_its_deformation() -> None:
    mesh = block_tet_mesh()
    record = simulation_record(mesh, top_displacement_mm=4.0)
    case = phantom_case(with_plan=False)
    stored = case.add_tet_mesh(mesh)
    case.add_record(record)
    result = simulation_result(case)
    assert isinstance(result, SimulationResult) and result.linear_steps and result.tet_mesh is stored
    surface = deformed_surface(result)
    assert surface.bounds[2] == pytest.approx(-14.0)  # the top moved 4 mm anterior (-Y)
    assert surface["displacement_magnitude_mm"].max() == pytest.approx(4.0)
    key, title, cmap = QUANTITIES["displacement"]
    assert title == "displacement (mm)"
    with RehearsalScene(size=(200, 160), orientation=False) as scene:
        scene.add_field_surface(surface, scalars=key, title=title, cmap=cmap, clim=(0.0, 4.0))
        scene.view("left")
        img = scene.image().astype(int)
    top, bottom = img[int(160 * 0.25), 90], img[int(160 * 0.75), 90]
    assert top[1] > 150 and top[2] < 120  # viridis high end: yellow
    assert bottom[2] > bottom[1] - 30 and bottom[0] < 100  # viridis low end: dark purple-blue


def test_clearance_map_is_red_near_the_tool() -> None:
    trajectory = Trajectory("near", (0, -60, 17), (0, -4, 17), tool_diameter_mm=2.0)
    ball = sphere((0, 0, 0), 15, (1, 1, 1), "ball")
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.add_clearance_map(ball, trajectory, max_mm=20.0)
        scene.view("anterior")
        img = scene.image().astype(int)
    poly = scene.actors["clearance-ball"].mapper.dataset
    assert poly["clearance_mm"].min() == pytest.approx(np.hypot(4, 17) - 15 - 1, abs=0.5)
    near, far = img[int(SIZE[1] * 0.3), SIZE[0] // 2], img[int(SIZE[1] * 0.7), SIZE[0] // 2]
    assert near[0] > near[1]  # upper part of the ball, closest to the tool: red-orange
    assert far[1] > far[0]  # lower part, far: green


def _compare_with_cache(name: str, img: np.ndarray) -> None:
    import imageio.v3 as iio

    path = CACHE / f"{name}.png"
    if os.environ.get("TWIN_UPDATE_IMAGE_CACHE") == "1":
        iio.imwrite(path, img)
    if not path.exists():
        pytest.fail(f"image cache {path} is missing; run with TWIN_UPDATE_IMAGE_CACHE=1 once and review it")
    cached = np.asarray(iio.imread(path))[..., :3].astype(int)
    assert cached.shape == img.shape
    diff = np.abs(cached - img.astype(int)).max(axis=-1)
    # Tolerance for rasteriser differences (driver versions, antialiasing): small mean, few strong pixels.
    assert diff.mean() < 3.0 and np.mean(diff > 60) < 0.01, f"{name}: mean diff {diff.mean():.2f}"


def test_image_cache_phantom_left_view_with_plan() -> None:
    case = phantom_case()
    with build_case_scene(case, SceneOptions(), size=SIZE) as scene:
        scene.set_camera(camera_for(scene, case, "left"))
        _compare_with_cache("phantom_left_plan", scene.image())


def test_image_cache_coronal_slice() -> None:
    volume = phantom_volume()
    with RehearsalScene(size=SIZE) as scene:
        scene.add_slice(volume, standard_plane(volume, "coronal"), window_level=WINDOW_LEVELS["soft_tissue"])
        scene.add_plan(Plan(trajectories=(TRAJECTORY,)), labels=False)
        scene.view("anterior")
        _compare_with_cache("phantom_coronal_slice", scene.image())


def test_implant_and_resection_plane_in_their_colours() -> None:
    from workstation.model.plan import Implant, ResectionPlane
    from workstation.render import plan_objects

    pose = np.eye(4)
    pose[:3, 3] = (-20.0, 0.0, 15.0)  # tip at the patient's right; inserted along +z (superior): head at z -15
    plan = Plan(implants=(Implant("screw", "pedicle_screw", pose, diameter_mm=6.0, length_mm=30.0),),
                resection_planes=(ResectionPlane("cut", (20.0, 0.0, 0.0), (1.0, 0.0, 0.0)),))
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.include_bounds((-30, 30, -10, 10, -20, 20))
        scene.add_plan(plan, labels=False)
        scene.view("anterior")
        img = scene.image().astype(int)
    body = plan_objects.implant_body(plan.implants[0])
    np.testing.assert_allclose(body.bounds[4:], (-15.0, 15.0), atol=1e-6)  # from the head to the tip 30 mm superior
    # anterior view: patient's right (-X, the implant) on the screen's left; the plane x = 20 is edge-on
    screw = img[SIZE[1] // 2, int(SIZE[0] * 0.5 - 20 / 33 * SIZE[0] / 2 * 0.9)]
    assert abs(screw[0] - screw[2]) < 40 and screw.mean() > 80  # grey metal
    with RehearsalScene(size=SIZE, orientation=False) as scene:
        scene.include_bounds((-30, 30, -30, 30, -30, 30))
        scene.add_plan(plan, labels=False)
        scene.view("left")  # the plane faces this camera
        r, g, b = scene.image().astype(int)[SIZE[1] // 3, SIZE[0] // 3]
    assert r > b + 30 and g > b + 20  # translucent yellow over the dark background


def test_oblique_slice_camera_faces_the_plane() -> None:
    from workstation.render.mpr import oblique_plane

    with RehearsalScene(size=SIZE, orientation=False) as scene:
        mpr = scene.add_slice(phantom_volume(), oblique_plane(TRAJECTORY), window_level=WINDOW_LEVELS["bone"])
        pose = scene.face_slice(mpr.plane.name)
        img = scene.image()
    np.testing.assert_allclose(-pose.direction, mpr.plane.normal, atol=1e-9)
    assert img[SIZE[1] // 2, SIZE[0] // 2].mean() > 200  # the bone sphere cut through its centre


def test_movie_frames_stop_when_progress_says_cancel(tmp_path: Path) -> None:
    from workstation.errors import CancelledError
    from workstation.render.animation import camera_frames, write_movie
    from workstation.render.cameras import orbit_poses

    calls = []

    def cancel_after_two(done: int, total: int, message: str) -> bool:
        calls.append(done)
        return done < 2

    with RehearsalScene(size=(64, 48), orientation=False) as scene:
        scene.add_surface(sphere((0, 0, 0), 10, (1.0, 0.0, 0.0), "ball"))
        with pytest.raises(CancelledError):
            write_movie(camera_frames(scene, orbit_poses(scene.bounds, 6), progress=cancel_after_two),
                        tmp_path / "o.gif")
    assert calls == [0, 1, 2] and not (tmp_path / "o.gif").exists() and not list(tmp_path.iterdir())
