"""Atomic writes: the old file survives a failure; new files get ordinary permissions, keys private ones."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from workstation.errors import OutputError
from workstation.io.atomic import atomic_path, write_bytes_atomic, write_text_atomic


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_failure_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "plan.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["plan.json"]
    with pytest.raises(OutputError, match="does not exist"):
        write_text_atomic(tmp_path / "missing" / "x.json", "x")


def test_modes_follow_umask_existing_file_or_request(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    fresh = tmp_path / "report.html"
    write_text_atomic(fresh, "<html/>")
    assert _mode(fresh) == 0o666 & ~umask  # not the 0600 of a temporary file
    os.chmod(fresh, 0o640)
    write_text_atomic(fresh, "<html>2</html>")
    assert _mode(fresh) == 0o640  # a replaced file keeps its mode
    key = tmp_path / "site.key"
    write_bytes_atomic(key, os.urandom(32), mode=0o600)
    assert _mode(key) == 0o600
