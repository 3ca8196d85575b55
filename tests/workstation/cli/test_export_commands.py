"""``twin export-plan / verify-plan / send-plan / import-markups / export-markups / export-ros / reach``."""

from __future__ import annotations

import json
import signal
import socket
from pathlib import Path

import numpy as np
import pyigtl
import pytest
import yaml

from tests.workstation.export.plan_samples import max_plan_difference, sample_case
from workstation.bundle import load_case, save_case
from workstation.cli import main as cli


@pytest.fixture()
def cases(tmp_path: Path) -> dict[str, Path]:
    paths = {"registered": tmp_path / "registered", "plain": tmp_path / "plain"}
    save_case(sample_case(), paths["registered"])
    save_case(sample_case(with_registration=False), paths["plain"])
    (tmp_path / "site.key").write_bytes(bytes(range(100, 132)))
    (tmp_path / "other.key").write_bytes(bytes(range(32)))
    (tmp_path / "short.key").write_bytes(b"too short")
    return paths


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_sign_verify_and_refusals(cases, tmp_path, capsys) -> None:
    plan, key = tmp_path / "plan.json", tmp_path / "site.key"
    code, out, err = run(capsys, "export-plan", str(cases["registered"]), "-o", str(plan), "--sign-key", str(key))
    assert code == 0, err
    assert "signed (key_id" in out
    assert run(capsys, "verify-plan", str(plan), "--key", str(key))[0] == 0
    code, out, _ = run(capsys, "verify-plan", str(plan), "--key", str(key), "--json")
    assert code == 0 and json.loads(out)["signature"] == "valid"
    # Signed plan without a key: NOT verified, one line, non-zero.
    code, _, err = run(capsys, "verify-plan", str(plan))
    assert code == 3 and "NOT verified" in err and "no key" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "verify-plan", str(plan), "--key", str(tmp_path / "other.key"))
    assert code == 3 and "another key" in err
    code, _, err = run(capsys, "verify-plan", str(plan), "--key", str(tmp_path / "short.key"))
    assert code == 3 and "at least 16 bytes" in err
    text = plan.read_text()
    position = text.index('"target_mm": [') + len('"target_mm": [') + 1
    tampered = tmp_path / "tampered.json"
    tampered.write_text(text[:position] + ("1" if text[position] != "1" else "2") + text[position + 1:])
    code, _, err = run(capsys, "verify-plan", str(tampered), "--key", str(key))
    assert code == 3 and "digest mismatch" in err
    # Unsigned plan: verified on schema and digest without a key; refused with one.
    unsigned = tmp_path / "unsigned.json"
    assert run(capsys, "export-plan", str(cases["registered"]), "-o", str(unsigned))[0] == 0
    assert run(capsys, "verify-plan", str(unsigned))[0] == 0
    code, _, err = run(capsys, "verify-plan", str(unsigned), "--key", str(key))
    assert code == 3 and "not signed" in err


def test_frame_robot_needs_a_registration(cases, tmp_path, capsys) -> None:
    out_path = tmp_path / "robot.json"
    code, _, err = run(capsys, "export-plan", str(cases["plain"]), "-o", str(out_path), "--frame", "robot")
    assert code == 3 and "no registration" in err and not out_path.exists()
    code, _, err = run(capsys, "export-plan", str(cases["registered"]), "-o", str(out_path), "--frame", "robot")
    assert code == 0, err
    document = json.loads(out_path.read_text())
    assert document["coordinate_frame"]["name"] == "robot" and document["registration"]["fre_mm"] == 0.1234
    code, _, err = run(capsys, "export-plan", str(cases["registered"]), "-o", str(tmp_path / "x.json"),
                       "--sign-key", str(tmp_path / "short.key"))
    assert code == 3 and "at least 16 bytes" in err and not (tmp_path / "x.json").exists()
    code, _, err = run(capsys, "export-plan", str(cases["registered"]), "-o", str(tmp_path / "no" / "x.json"))
    assert code == 4


def test_markups_export_then_import_into_another_case(cases, tmp_path, capsys) -> None:
    markups = tmp_path / "plan.mrk.json"
    assert run(capsys, "export-markups", str(cases["registered"]), "-o", str(markups))[0] == 0
    empty = tmp_path / "empty"
    case = sample_case(with_registration=False)
    case.set_plan(type(case.plan)())
    save_case(case, empty)
    code, out, err = run(capsys, "import-markups", str(empty), str(markups))
    assert code == 0, err
    assert "4 trajectories" in out
    imported, original = load_case(empty).plan, load_case(cases["registered"]).plan
    assert imported.trajectories == original.trajectories
    assert imported.landmarks == original.landmarks
    assert len(imported.resection_planes) == 2
    bad = tmp_path / "bad.mrk.json"
    bad.write_text("[]")
    code, _, err = run(capsys, "import-markups", str(empty), str(bad))
    assert code == 3 and "not a Slicer markups file" in err


def test_export_ros(cases, tmp_path, capsys) -> None:
    out_path = tmp_path / "poses.yaml"
    code, _, err = run(capsys, "export-ros", str(cases["plain"]), "-o", str(out_path))
    assert code == 3 and "no registration" in err
    transform = tmp_path / "base.txt"
    np.savetxt(transform, np.eye(4))
    code, _, err = run(capsys, "export-ros", str(cases["registered"]), "-o", str(out_path), "--patient-to-base",
                       str(transform), "--base-frame", "ur_base")
    assert code == 0, err
    data = yaml.safe_load(out_path.read_text())
    assert data["header"]["frame_id"] == "ur_base" and len(data["poses"]) == 8


def test_reach_json(cases, tmp_path, capsys) -> None:
    code, out, err = run(capsys, "reach", str(cases["registered"]), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert len(data["results"]) == 4 and data["robot"] == "panda"
    assert all(r["reachable"] or r["reason"] for r in data["results"])
    code, out, err = run(capsys, "reach", str(cases["registered"]), "--robot", "ur5", "--base", "-5000,0,0")
    assert code == 0, err
    assert out.count("NOT reachable: out of workspace") == 4
    code, _, err = run(capsys, "reach", str(cases["registered"]), "--base", "1,2")
    assert code == 3 and "--base" in err


def test_send_plan(cases, tmp_path, capsys) -> None:
    plan, key = tmp_path / "plan.json", tmp_path / "site.key"
    assert run(capsys, "export-plan", str(cases["registered"]), "-o", str(plan), "--sign-key", str(key))[0] == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, _, err = run(capsys, "send-plan", str(plan), "--igtl", f"127.0.0.1:{port}", "--key", str(key))
    assert code == 3 and "nothing listens" in err
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = pyigtl.OpenIGTLinkServer(port=port, local_server=True)
    try:
        code, out, err = run(capsys, "send-plan", str(plan), "--igtl", f"127.0.0.1:{port}", "--key", str(key))
        assert code == 0, err
        assert "Traj01ToImageLPS" in out
        message = server.wait_for_message("PLAN", timeout=10)
        assert message is not None
        received = json.loads(message.string)
        assert received == json.loads(plan.read_text())
        from workstation.export.plan_json import plan_from_document

        assert max_plan_difference(plan_from_document(received), load_case(cases["registered"]).plan) == 0.0
    finally:
        server.stop()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    text = plan.read_text()
    tampered = tmp_path / "tampered.json"
    tampered.write_text(text.replace('"tool_diameter_mm": 4.5', '"tool_diameter_mm": 4.6'))
    code, _, err = run(capsys, "send-plan", str(tampered), "--igtl", f"127.0.0.1:{port}")
    assert code == 3 and "refused, not sent" in err
