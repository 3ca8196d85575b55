"""A start-up check of the Qt binding for a known defect that would crash the app mid-session.

PySide6 6.12.0 drops one reference to ``True``/``False`` on every ``Signal.emit()`` made from Python;
after a few thousand emits (a minute of painting or scrolling) the interpreter aborts with
"bool_dealloc". The check emits a private signal and compares the reference counts; 6.11.x is
correct (pyproject excludes 6.12.0).
"""

from __future__ import annotations

import sys

import PySide6
from PySide6.QtCore import QObject, Signal

from workstation.errors import InputError


class _Probe(QObject):
    ping = Signal(int)


def emit_leaks_bool_references(n: int = 64) -> bool:
    """True when ``n`` Python-side emits change the reference count of ``True`` or ``False``."""
    probe = _Probe()
    probe.ping.connect(lambda value: None)
    before = sys.getrefcount(True), sys.getrefcount(False)
    for value in range(n):
        probe.ping.emit(value)
    after = sys.getrefcount(True), sys.getrefcount(False)
    probe.deleteLater()
    return after[0] < before[0] - n // 2 or after[1] < before[1] - n // 2


def require_sound_binding() -> None:
    """Raise :class:`InputError` (one line, before any window) when the binding has the defect."""
    if emit_leaks_bool_references():
        raise InputError(f"PySide6 {PySide6.__version__} drops a reference to True on every Signal.emit and would "
                         "crash the app within minutes; install another version: "
                         "pip install 'PySide6-Essentials!=6.12.0'")
