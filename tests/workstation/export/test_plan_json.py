"""The versioned JSON plan: schema, exact round trips, digest and HMAC signature checks."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from tests.workstation.export.plan_samples import max_plan_difference, sample_case, sample_plan
from workstation.errors import InputError
from workstation.export import plan_json as pj
from workstation.export.tool_pose import trajectory_pose

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture(scope="module")
def signed_text() -> str:
    return pj.plan_json_text(pj.sign_document(pj.build_plan_document(sample_case()), KEY))


def test_written_plans_satisfy_the_schema(tmp_path) -> None:
    schema = json.loads(pj.SCHEMA_PATH.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = Draft202012Validator(schema)
    case = sample_case()
    for frame in ("image", "robot"):
        for key in (None, KEY):
            path = tmp_path / f"{frame}-{key is not None}.json"
            written = pj.export_plan(case, path, frame=frame, key=key)
            loaded = json.loads(path.read_text())
            assert loaded == written
            assert list(validator.iter_errors(loaded)) == []
            assert loaded["units"] == {"length": "mm", "angle": "deg"}
            assert loaded["source_image"]["series_instance_uid"] == "2.25.2"
            assert loaded["registration"]["fre_mm"] == 0.1234
            assert loaded["registration"]["predicted_tre_mm"] == [0.21, 0.3]
            assert "origin at the target" in loaded["tool_axis_convention"]
    # A document missing a required part or with a wrong unit fails the schema.
    broken = dict(loaded)
    broken["units"] = {"length": "m", "angle": "deg"}
    assert pj.schema_problem(broken) is not None
    assert pj.schema_problem({k: v for k, v in loaded.items() if k != "digest"}) is not None


def test_image_frame_round_trip_is_exact(tmp_path) -> None:
    case = sample_case()
    path = tmp_path / "plan.json"
    document = pj.export_plan(case, path, frame="image")
    text = path.read_text()
    loaded = json.loads(text)
    # Canonical bytes are reproducible after loads/dumps, so the digest is.
    assert pj.canonical_bytes(loaded) == pj.canonical_bytes(document)
    assert pj.digest_of(json.loads(json.dumps(loaded))) == loaded["digest"]["value"]
    back = pj.plan_from_document(loaded)
    assert back.trajectories == case.plan.trajectories  # bit for bit
    assert back.landmarks == case.plan.landmarks
    assert max_plan_difference(back, case.plan) <= 1e-12


def test_robot_frame_maps_by_the_registration_and_back(tmp_path) -> None:
    case = sample_case()
    registration = next(iter(case.registrations.values()))
    document = pj.build_plan_document(case, frame="robot")
    assert document["coordinate_frame"]["name"] == "robot"
    m = registration.matrix
    for t, written in zip(case.plan.trajectories, document["trajectories"], strict=True):
        expected_target = m[:3, :3] @ t.target_lps + m[:3, 3]
        assert np.abs(np.array(written["target_mm"]) - expected_target).max() < 1e-9
        pose = np.array(written["pose"])
        # Tool-axis convention: origin at the target, +z from entry to target.
        assert np.allclose(pose[:3, 3], written["target_mm"], atol=0)
        direction = np.subtract(written["target_mm"], written["entry_mm"])
        assert np.allclose(pose[:3, 2], direction / np.linalg.norm(direction), atol=1e-12)
        assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
    implant_written = np.array(document["implants"][0]["pose"])
    assert np.abs(implant_written - m @ np.array(case.plan.implants[0].pose_lps)).max() < 1e-9
    back = pj.plan_from_document(json.loads(pj.plan_json_text(document)))
    assert max_plan_difference(back, case.plan) < 1e-9


def test_robot_frame_without_registration_is_refused() -> None:
    with pytest.raises(InputError, match="no registration"):
        pj.build_plan_document(sample_case(with_registration=False), frame="robot")


def test_signed_plan_verifies_only_with_its_key(signed_text) -> None:
    document = json.loads(signed_text)
    ok = pj.verify_plan(document, KEY)
    assert ok.verified and ok.signature == "valid" and ok.schema_ok and ok.digest_ok and ok.geometry_ok
    no_key = pj.verify_plan(document)
    assert not no_key.verified and "no key" in no_key.reason
    wrong = pj.verify_plan(document, OTHER_KEY)
    assert not wrong.verified and "another key" in wrong.reason
    # Forged key_id (matching the other key) still fails on the HMAC itself.
    forged = json.loads(signed_text)
    forged["signature"]["key_id"] = pj.key_id_of(OTHER_KEY)
    result = pj.verify_plan(forged, OTHER_KEY)
    assert not result.verified and "signature mismatch" in result.reason


def test_unsigned_plan_checks_schema_and_digest() -> None:
    document = pj.build_plan_document(sample_case())
    assert pj.verify_plan(document).verified
    with_key = pj.verify_plan(document, KEY)
    assert not with_key.verified and "not signed" in with_key.reason


def test_one_changed_digit_anywhere_is_refused(signed_text, tmp_path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(signed_text)
    assert pj.verify_plan(path, KEY).verified
    # Every 9th digit of the file (numbers, UIDs, digest, signature, time stamp) and the last, most
    # subtle digit of every number (~30 ms per verification: all ~2000 digits would take a minute).
    all_digits = [m.start() for m in re.finditer(r"[0-9]", signed_text)]
    last_digits = [m.end() - 1 for m in re.finditer(r"-?[0-9][0-9.eE+-]*[0-9]", signed_text)]
    digits = sorted(set(all_digits[::9]) | set(last_digits))
    assert len(all_digits) > 1000 and len(digits) > 300
    same_double = 0
    for position in digits:
        new = "7" if signed_text[position] != "7" else "3"
        tampered = signed_text[:position] + new + signed_text[position + 1:]
        path.write_text(tampered)
        try:
            result = pj.verify_plan(path, KEY)
        except InputError:
            continue  # e.g. a leading zero: not even JSON
        assert not result.verified, f"digit {position} changed and still verified"
        same_double += "file text was changed" in result.reason
    # Some 17th-digit edits parse to the same double: only the canonical-spelling check sees them.
    assert same_double > 0


def test_an_attacker_without_the_key_cannot_fix_the_digest(signed_text) -> None:
    document = json.loads(signed_text)
    document["trajectories"][0]["tool_diameter_mm"] = 9.0
    document["digest"]["value"] = pj.digest_of(document)
    result = pj.verify_plan(document, KEY)
    assert not result.verified and result.digest_ok and "signature mismatch" in result.reason
    # Unsigned and re-digested, a moved target contradicts the pose: the geometry check catches it.
    unsigned = pj.build_plan_document(sample_case())
    unsigned["trajectories"][0]["target_mm"][0] += 1.0
    unsigned["digest"]["value"] = pj.digest_of(unsigned)
    result = pj.verify_plan(unsigned)
    assert not result.verified and result.geometry_ok is False


def test_keys_shorter_than_16_bytes_are_refused(tmp_path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"0123456789abcde")  # 15 bytes
    with pytest.raises(InputError, match="at least 16 bytes"):
        pj.load_site_key(short)
    with pytest.raises(InputError, match="at least 16"):
        pj.sign_document(pj.build_plan_document(sample_case()), b"short")
    with pytest.raises(InputError, match="cannot read"):
        pj.load_site_key(tmp_path / "missing.key")
    good = tmp_path / "good.key"
    good.write_bytes(KEY)
    assert pj.load_site_key(good) == KEY


def test_unreadable_files_raise_input_errors(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        pj.verify_plan(bad)
    bad.write_text('{"trajectories": NaN}')
    with pytest.raises(InputError, match="not valid JSON"):
        pj.verify_plan(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="JSON object"):
        pj.verify_plan(bad)


def test_tool_pose_convention() -> None:
    pose = trajectory_pose((0.0, 0.0, 10.0), (0.0, 0.0, 0.0))
    assert np.allclose(pose[:3, 2], [0, 0, -1]) and np.allclose(pose[:3, 3], 0)
    assert np.isclose(np.linalg.det(pose[:3, :3]), 1.0)
    for direction in np.random.default_rng(0).normal(size=(20, 3)):
        pose = trajectory_pose(-direction, np.zeros(3))
        assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-12)
        assert np.isclose(np.linalg.det(pose[:3, :3]), 1.0)
        assert np.allclose(pose[:3, 2], direction / np.linalg.norm(direction))
    assert sample_plan() == sample_plan()
