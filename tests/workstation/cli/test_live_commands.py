"""``twin live``, ``twin simulate-tracker`` and ``twin session`` as a user runs them, over loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.workstation.live.phantom import phantom_case
from workstation.bundle import load_case, save_case
from workstation.cli import main as cli

TWIN = [sys.executable, "-m", "workstation.cli.main"]


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]):
    """``twin ARGS`` in this process (only ``twin live`` runs as a separate process, beside it)."""

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = cli.main(list(args))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return invoke


def start_live(case: Path, name: str, *extra: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([*TWIN, "live", str(case), "--igtl-listen", "0", "--record", name, "--until-disconnect",
                             "--duration-s", "60", *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            return proc, int(line.split()[2].split(":")[1])
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"twin live did not start: {proc.stderr.read() if proc.stderr else ''}")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("live-cli")
    save_case(phantom_case(registered=True), folder / "case")
    return folder


def test_live_session_from_an_exported_robot_frame_plan(bundle: Path, run) -> None:
    case = bundle / "case"
    plan = bundle / "plan.json"
    proc = run("export-plan", str(case), "-o", str(plan), "--frame", "robot")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(plan.read_text())["coordinate_frame"]["name"] == "tracker"

    for name, extra in (("straight", ["--noise-mm", "0.2"]), ("offset", ["--offset-mm", "-3,0,0"])):
        live, port = start_live(case, name)
        # a garbage client first: reported, and the session still records the simulator's stream
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
        sim = run("simulate-tracker", str(plan), "--igtl", f"127.0.0.1:{port}", "--duration-s", "1", *extra)
        assert sim.returncode == 0, sim.stderr
        assert "sent 61 TRANSFORM messages" in sim.stdout
        out, err = live.communicate(timeout=60)
        assert live.returncode == 0, err
        assert "stream malformed" in out and "stream disconnected" in out
        assert f"recorded session {name!r}: 61 poses, 0 dropped, 1 malformed" in out

    listed = json.loads(run("session", "list", str(case), "--json").stdout)
    assert [s["name"] for s in listed["sessions"]] == ["straight", "offset"]
    score = json.loads(run("session", "score", str(case), "offset", "--json").stdout)
    # the offset is given in the tracker frame; the registration is rigid, so its size is kept: 3 mm sideways
    assert score["entry_deviation_mm"] == pytest.approx(3.0, abs=0.05)
    assert score["target_deviation_mm"] == pytest.approx(3.0, abs=0.05)
    assert score["angle_deg"] == pytest.approx(0.0, abs=0.05)
    text = run("session", "score", str(case), "straight", "--report", str(bundle))
    assert text.returncode == 0 and "entry deviation" in text.stdout and (bundle / "straight.html").is_file()

    compare = run("session", "compare", str(case), "straight", "offset", "-o", str(bundle / "cmp.png"))
    assert compare.returncode == 0, compare.stderr
    assert (bundle / "cmp.png").stat().st_size > 10000

    movie = bundle / "offset.mp4"
    replay = run("session", "replay", str(case), "offset", "-o", str(movie), "--speed", "2", "--fps", "10")
    assert replay.returncode == 0, replay.stderr
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(movie))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    assert meta["size"] == (960, 720) and 5 <= frames <= 8  # ~1.03 s at x2 and 10 fps -> 6 frames
    recorded = load_case(case).record("session", "offset")
    assert recorded.meta["tracker_frame"] == "tracker" and recorded.arrays["pose"].shape == (61, 4, 4)
    assert np.all(recorded.arrays["sequence"] == np.arange(61))


def test_errors_are_one_line(bundle: Path, run) -> None:
    case = bundle / "case"
    proc = run("session", "score", str(case), "missing")
    assert proc.returncode == 3 and "no session 'missing'" in proc.stderr and "Traceback" not in proc.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    proc = run("simulate-tracker", str(case), "--igtl", f"127.0.0.1:{free}", "--connect-timeout-s", "0.3")
    assert proc.returncode == 3 and "no OpenIGTLink server" in proc.stderr
    proc = run("simulate-tracker", str(case), "--igtl", "127.0.0.1:1", "--trajectory", "nope")
    assert proc.returncode == 3 and "--trajectory 'nope'" in proc.stderr
    proc = run("simulate-tracker", str(case), "--igtl", "nohost", "--rate-hz", "60")
    assert proc.returncode == 3 and "HOST:PORT" in proc.stderr
    proc = run("live", str(case), "--igtl-listen", "0", "--record", "empty", "--duration-s", "0.3")
    assert proc.returncode == 3 and "no pose received" in proc.stderr
    assert "empty" not in [r.name for r in load_case(case).records_of("session")]
    proc = run("session", "replay", str(case), "straight", "-o", str(bundle / "movie.avi"))
    assert proc.returncode == 3 and ".mp4" in proc.stderr
