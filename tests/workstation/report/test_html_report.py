"""The HTML rehearsal report: sections, embedded pictures, safety, mechanics plot and the plan digest."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from tests.workstation.render.phantom import phantom_case
from workstation.errors import OutputError
from workstation.report.html_report import mechanics_of, plan_digest, safety_of, write_report
from workstation.report.plots import force_displacement_png


def _decode_png(src: str) -> np.ndarray:
    import imageio.v3 as iio

    assert src.startswith("data:image/png;base64,")
    return np.asarray(iio.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), extension=".png"))


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    case = phantom_case(with_results=True)
    path = write_report(case, tmp_path_factory.mktemp("report") / "report.html", size=(200, 150))
    return path.read_text(encoding="utf-8")


def test_report_embeds_every_picture(report_html: str) -> None:
    sources = re.findall(r'src="([^"]+)"', report_html)
    # anterior, left, superior, probe, axial slice, clearance map, displacement, von Mises, force plot
    assert len(sources) == 9
    pictures = [_decode_png(s) for s in sources]
    assert all(p.shape[:2] == (150, 200) for p in pictures[:8])
    assert all(p[..., :3].std() > 5 for p in pictures)  # none is blank


def test_report_sections_hold_the_case_facts(report_html: str) -> None:
    text = re.sub(r"<[^>]+>", " ", report_html)
    assert "De-identified" in text
    assert "bone" in text and "posterior-path" in text and "tip" in text
    assert re.search(r"aorta\s+14\.20\s+12\.70\s+no", text)  # safety row
    assert "margin violated by bone" in text and "12.5" in text  # entry angle
    assert "Max displacement 4.000 mm" in " ".join(text.split())
    assert "kPa" in text and "Max tool force 2.000 N" in " ".join(text.split())
    assert "linear" in text and "converged" in text


def test_report_digest_is_the_plan_documents(report_html: str) -> None:
    case = phantom_case(with_results=True)
    digest = plan_digest(case)
    assert re.fullmatch(r"[0-9a-f]{64}", digest["value"])
    assert digest["value"] in report_html
    from workstation.export.plan_json import build_plan_document

    assert digest["value"] == build_plan_document(case, created_utc="1970-01-01T00:00:00Z")["digest"]["value"]
    moved = phantom_case(with_results=True)
    moved.set_plan(moved.plan.with_item(type(case.plan.landmarks[0])("tip", (0.0, -20.0, 11.0))))
    assert plan_digest(moved)["value"] != digest["value"]


def test_digest_without_the_exporter_is_the_canonical_plan_sha256(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "workstation.export.plan_json", None)  # import fails
    case = phantom_case()
    digest = plan_digest(case)
    canonical = json.dumps(case.plan.to_dict(), sort_keys=True, separators=(",", ":")).encode()
    assert digest["value"] == hashlib.sha256(canonical).hexdigest()
    assert "canonical plan JSON" in digest["description"]


def test_force_plot_shows_the_curve() -> None:
    png = force_displacement_png([0, 1, 2, 3], np.array([[0, 0, 0], [0, 3, 4], [0, 6, 8], [0, 9, 12]]))
    import imageio.v3 as iio

    img = np.asarray(iio.imread(io.BytesIO(png), extension=".png"))[..., :3].astype(int)
    assert img.shape == (360, 600, 3)
    blue = (img[..., 2] > 150) & (img[..., 0] < 100)
    rows, cols = np.nonzero(blue)
    # force rises with displacement: the line climbs from left to right (image rows grow downwards)
    assert np.corrcoef(cols, rows)[0, 1] < -0.9
    with pytest.raises(ValueError, match="displacements"):
        force_displacement_png([0, 1], [1.0, 2.0, 3.0])


def test_safety_and_mechanics_summaries() -> None:
    case = phantom_case(with_results=True)
    (s,) = safety_of(case)
    assert s["violated"] == ["bone"] and s["margin_mm"] == 2.0
    (m,) = mechanics_of(case)
    assert m["max_displacement_mm"] == pytest.approx(4.0)
    # highest tet centroid: three nodes on the top (z 10) and one 5 mm below -> 18.75 mm above the bottom
    assert m["max_von_mises_kpa"] == pytest.approx((1000 + 500 * 18.75) / 1000)
    assert len(m["images"]) == 1  # the force plot (views are added when rendering)


def test_report_of_a_case_without_plan_or_results(tmp_path: Path) -> None:
    case = phantom_case(with_plan=False)
    html = write_report(case, tmp_path / "r.html", size=(120, 90)).read_text(encoding="utf-8")
    assert len(re.findall(r'src="data:image/png', html)) == 4  # three standard views and the axial slice
    assert "No mechanics result" in html and "No safety analysis" in html


def test_report_into_a_missing_folder_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_report(phantom_case(), tmp_path / "missing" / "r.html")
