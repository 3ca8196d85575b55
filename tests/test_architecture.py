"""Import rules of the architecture: only ui/ imports Qt; the model does not pull in the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("workstation", "segmentation", "mechanics")
QT = ("PySide6", "PyQt5", "PyQt6", "pyvistaqt", "qtpy", "shiboken6")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_qt_outside_ui() -> None:
    offenders = [f"{path.relative_to(ROOT)}: {name}" for package in CORE for path in (ROOT / package).rglob("*.py")
                 for name in imported_modules(path) if name.split(".")[0] in QT]
    assert offenders == []


def test_segmentation_and_mechanics_stay_independent() -> None:
    for package, forbidden in (("segmentation", ("mechanics", "ui")), ("mechanics", ("segmentation", "ui"))):
        for path in (ROOT / package).rglob("*.py"):
            bad = [n for n in imported_modules(path) if n.split(".")[0] in forbidden]
            assert bad == [], f"{path.relative_to(ROOT)} imports {bad}"


def test_core_imports_with_qt_unavailable_and_model_stays_light() -> None:
    code = (
        "import sys\n"
        f"for name in {QT!r}: sys.modules[name] = None\n"
        "import workstation.model\n"
        "assert 'workstation.cli.main' not in sys.modules, 'model pulls in the CLI'\n"
        "assert 'pyvista' not in sys.modules and 'SimpleITK' not in sys.modules\n"
        "import workstation.cli.main, workstation.importer, workstation.bundle, workstation.demo\n"
        "import segmentation, mechanics\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
