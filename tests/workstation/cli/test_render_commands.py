"""``twin render | flythrough | orbit | deformation | report | camera`` as a user meets them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.workstation.render.phantom import phantom_case
from workstation.bundle import load_case, save_case
from workstation.cli.main import main


def read_png(path: Path) -> np.ndarray:
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))[..., :3].astype(int)


@pytest.fixture(scope="module")
def case_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_case(phantom_case(with_results=True), tmp_path_factory.mktemp("render-cli") / "case")


def test_render_views_at_the_requested_size(case_path: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    pictures = {}
    for view in ("anterior", "left", "probe:posterior-path"):
        out = tmp_path / f"{view.replace(':', '-')}.png"
        assert main(["render", str(case_path), "--view", view, "--size", "200x150", "-o", str(out)]) == 0
        pictures[view] = read_png(out)
        assert pictures[view].shape == (150, 200, 3)
    assert "wrote" in capsys.readouterr().out
    assert np.abs(pictures["anterior"] - pictures["left"]).mean() > 5
    centre = pictures["anterior"][75, 100]
    assert centre.mean() > 150  # the light bone sphere
    assert load_case(case_path).meshes == {}  # rendering built the surface without changing the case


def test_render_slices_volume_and_results(case_path: Path, tmp_path: Path) -> None:
    for extra in (["--mpr", "axial", "--window-level", "bone"], ["--mpr", "oblique:posterior-path"],
                  ["--mpr", "coronal", "--window-level", "400,40"], ["--volume-preset", "bone", "--no-surfaces"],
                  ["--simulation", "latest", "--color-by", "von_mises", "--no-surfaces"],
                  ["--clearance", "posterior-path"]):
        out = tmp_path / "x.png"
        assert main(["render", str(case_path), "--size", "160x120", *extra, "-o", str(out)]) == 0, extra
        img = read_png(out)
        assert img.shape == (120, 160, 3) and img.std() > 10, extra


@pytest.mark.parametrize(("args", "message"), [
    (["--size", "big"], "--size"),
    (["--view", "sideways"], "--view"),
    (["--view", "probe:nowhere"], "nowhere"),
    (["--window-level", "wide", "--mpr", "axial"], "--window-level"),
    (["--simulation", "none-such"], "none-such"),
])
def test_bad_parameters_are_one_line_input_errors(case_path: Path, tmp_path: Path, args: list[str], message: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bad.png"
    assert main(["render", str(case_path), *args, "-o", str(out)]) == 3
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()


def test_unwritable_output_is_exit_4(case_path: Path, tmp_path: Path) -> None:
    assert main(["render", str(case_path), "-o", str(tmp_path / "no" / "such" / "v.png")]) == 4


def test_flythrough_orbit_and_deformation_movies(case_path: Path, tmp_path: Path) -> None:
    import imageio.v3 as iio

    fly = tmp_path / "fly.mp4"
    assert main(["flythrough", str(case_path), "--trajectory", "posterior-path", "--frames", "12", "--size",
                 "160x120", "-o", str(fly)]) == 0
    frames = [np.asarray(f) for f in iio.imiter(fly)]
    assert len(frames) == 12 and frames[0].shape == (120, 160, 3)
    assert len({f[::8, ::8].tobytes() for f in frames}) >= 10
    orbit = tmp_path / "orbit.gif"
    assert main(["orbit", str(case_path), "--frames", "6", "--size", "120x90", "-o", str(orbit)]) == 0
    assert len(list(iio.imiter(orbit))) == 6
    deform = tmp_path / "deform.gif"
    assert main(["deformation", str(case_path), "--frames", "4", "--size", "120x90", "-o", str(deform)]) == 0
    gif = [np.asarray(f)[..., :3].astype(int) for f in iio.imiter(deform)]
    assert len(gif) == 4 and np.abs(gif[0] - gif[-1]).mean() > 1  # the mesh moved and changed colour


def test_flythrough_needs_a_known_trajectory(case_path: Path, tmp_path: Path) -> None:
    assert main(["flythrough", str(case_path), "--trajectory", "nope", "-o", str(tmp_path / "f.gif")]) == 3
    assert main(["flythrough", str(case_path), "--trajectory", "posterior-path", "-o",
                 str(tmp_path / "f.avi")]) == 3


def test_camera_save_list_and_render(case_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = save_case(load_case(case_path), tmp_path / "case")
    assert main(["camera", str(work), "save", "front", "--view", "anterior"]) == 0
    assert main(["camera", str(work), "save", "oblique", "--position", "-100,-200,50", "--focal-point",
                 "0,0,0"]) == 0
    capsys.readouterr()
    assert main(["camera", str(work), "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [c["name"] for c in listed["cameras"]] == ["front", "oblique"]
    assert listed["cameras"][1]["position_lps"] == [-100.0, -200.0, 50.0]
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    assert main(["render", str(work), "--view", "camera:front", "--size", "160x120", "-o", str(a)]) == 0
    assert main(["render", str(work), "--view", "anterior", "--size", "160x120", "-o", str(b)]) == 0
    assert np.abs(read_png(a) - read_png(b)).max() <= 1  # the saved camera is the anterior view
    assert main(["camera", str(work), "save", "bad", "--position", "1,2,3"]) == 3


def test_report_command_writes_a_self_contained_page(case_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(case_path), "--size", "160x120", "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') >= 8 and "Plan digest" in html


def test_flythrough_through_landmarks(tmp_path: Path) -> None:
    import imageio.v3 as iio

    from workstation.model.plan import Landmark

    case = phantom_case()
    case.set_plan(case.plan.with_item(Landmark("start", (0.0, -90.0, 0.0))).with_item(Landmark("side",
                                                                                                (40.0, -40.0, 0.0))))
    path = save_case(case, tmp_path / "case")
    out = tmp_path / "curve.gif"
    assert main(["flythrough", str(path), "--through", "start,side,tip", "--frames", "8", "--size", "96x72", "-o",
                 str(out)]) == 0
    assert len(list(iio.imiter(out))) == 8
    assert main(["flythrough", str(path), "--through", "start,nowhere", "-o", str(tmp_path / "x.gif")]) == 3


def test_case_without_segments_is_drawn_by_volume_rendering(tmp_path: Path) -> None:
    from tests.workstation.render.phantom import phantom_volume
    from workstation.model import Case

    case = Case(name="volume-only")
    case.add_volume(phantom_volume())
    path = save_case(case, tmp_path / "case")
    out = tmp_path / "v.png"
    assert main(["render", str(path), "--size", "120x90", "-o", str(out)]) == 0
    img = read_png(out)
    assert img[45, 60].mean() > 100  # the bone sphere through the bone preset
