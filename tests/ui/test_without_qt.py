"""Without Qt: the core packages and the ``twin`` CLI still import and run; ``twin app`` says what is missing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A meta-path finder that refuses Qt, as on a machine where PySide6 is not installed.
BLOCKER = """
import importlib.abc, sys
class _NoQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyvistaqt', 'qtpy', 'PyQt5', 'PyQt6'):
            raise ImportError(f'No module named {name!r} (blocked by the test)')
        return None
sys.meta_path.insert(0, _NoQt())
"""


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKER + code], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def test_core_packages_import_with_pyside6_unavailable() -> None:
    proc = run_python(
        "import pkgutil, importlib\n"
        "import workstation, segmentation, mechanics\n"
        "names = []\n"
        "for package in (workstation, segmentation, mechanics):\n"
        "    for info in pkgutil.walk_packages(package.__path__, package.__name__ + '.'):\n"
        "        importlib.import_module(info.name)\n"
        "        names.append(info.name)\n"
        "assert 'workstation.cli.app_commands' in names\n"
        "assert not any(m.split('.')[0] in ('PySide6', 'pyvistaqt') for m in sys.modules)\n"
        "print('ok', len(names))\n")
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr[-3000:]


def test_twin_app_without_qt_fails_with_one_clear_line() -> None:
    proc = run_python("from workstation.cli.main import main\nsys.exit(main(['app', '--sample']))\n")
    assert proc.returncode == 3, proc.stderr
    assert proc.stderr.strip().startswith("twin app: error: twin app needs PySide6")
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_twin_help_lists_app_and_other_commands_still_run_without_qt() -> None:
    proc = run_python("from workstation.cli.main import main\nsys.exit(main(['app', '--help']))\n")
    assert proc.returncode == 0 and "--sample" in proc.stdout and "--screenshot" in proc.stdout


def test_twin_app_rejects_a_missing_path_before_starting_qt(tmp_path: Path) -> None:
    proc = run_python(f"from workstation.cli.main import main\nsys.exit(main(['app', {str(tmp_path / 'nope')!r}]))\n")
    assert proc.returncode == 3 and "no such file or folder" in proc.stderr
