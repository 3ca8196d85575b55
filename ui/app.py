"""Start the workstation: ``twin app [CASE_OR_DICOM] [--sample]`` calls :func:`run`."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from ui.main_window import MainWindow
from ui.qt_check import require_sound_binding


def dark_palette() -> QPalette:
    """A dark theme (grey panels, black viewports), as radiology workstations use."""
    palette = QPalette()
    colors = {
        QPalette.ColorRole.Window: QColor(45, 45, 48), QPalette.ColorRole.WindowText: QColor(220, 220, 220),
        QPalette.ColorRole.Base: QColor(30, 30, 32), QPalette.ColorRole.AlternateBase: QColor(45, 45, 48),
        QPalette.ColorRole.ToolTipBase: QColor(60, 60, 64), QPalette.ColorRole.ToolTipText: QColor(230, 230, 230),
        QPalette.ColorRole.Text: QColor(220, 220, 220), QPalette.ColorRole.Button: QColor(55, 55, 60),
        QPalette.ColorRole.ButtonText: QColor(220, 220, 220), QPalette.ColorRole.BrightText: QColor(255, 80, 80),
        QPalette.ColorRole.Highlight: QColor(42, 130, 218), QPalette.ColorRole.HighlightedText: QColor(0, 0, 0),
        QPalette.ColorRole.Link: QColor(90, 160, 240),
    }
    for role, color in colors.items():
        palette.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return palette


def has_display() -> bool:
    """True when Qt can open a visible window (or a platform was chosen explicitly)."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def application(argv: list[str] | None = None) -> QApplication:
    """The QApplication (created once) with the app's names and the dark theme."""
    app = QApplication.instance()
    if app is None:
        if not has_display():
            # Qt aborts the process without a display; a headless machine still gets a (hidden) window.
            os.environ["QT_QPA_PLATFORM"] = "offscreen"
        app = QApplication(argv or [sys.argv[0]])
        require_sound_binding()
    app.setOrganizationName("surgical-twin")
    app.setApplicationName("workstation")
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    return app  # type: ignore[return-value]


def start(path: str | os.PathLike[str] | None = None, *, sample: bool = False) -> MainWindow:
    """Create and show the main window, opening ``path`` or the bundled sample in the background."""
    application()
    window = MainWindow()
    window.show()
    if sample:
        window.open_sample()
    elif path is not None:
        window.open_path(path)
    return window


def wait_until_idle(window: MainWindow, *, timeout_s: float = 120.0) -> bool:
    """Process events until no job runs (True) or ``timeout_s`` passes (False)."""
    app = QApplication.instance()
    deadline = time.monotonic() + timeout_s
    while window.busy and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    app.processEvents()
    return not window.busy


def seconds_since_process_start() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or ``None`` elsewhere."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat:
            start_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            now = float(uptime.read().split()[0])
        return now - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def run(path: str | os.PathLike[str] | None = None, *, sample: bool = False, screenshot: str | None = None,
        say: object = print) -> int:
    """Run the app until its window closes; with ``screenshot``, save the loaded window there and quit.

    Returns the exit code. With ``screenshot`` the start-up times are reported through ``say``:
    since the process started, until the window shows, until the slice views show the case, and
    until the 3D view is ready.
    """
    offset = seconds_since_process_start()
    started = time.monotonic() - (offset or 0.0)
    if screenshot is None and not has_display():
        from workstation.errors import InputError

        raise InputError("no display: DISPLAY is not set (run it on a desktop, over 'ssh -X', or under xvfb-run; "
                         "--screenshot works without a display)")
    app = application()
    window = start(path, sample=sample)
    if screenshot is None:
        return int(app.exec())
    os.environ["TWIN_APP_NO_PROMPT"] = "1"
    marks: dict[str, float] = {}

    def mark_case() -> None:
        marks.setdefault("case", time.monotonic() - started)
        marks.setdefault("case_cpu", time.process_time())

    window.document.case_changed.connect(mark_case)
    app.processEvents()
    marks["window"] = time.monotonic() - started
    if not wait_until_idle(window):
        raise TimeoutError("the case did not open within 120 s")
    if (sample or path is not None) and window.document.volume is None:
        return 3  # the error was shown; nothing to capture
    deadline = time.monotonic() + 60
    while not window.view3d.ready and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.005)
    marks["3d"] = time.monotonic() - started
    app.processEvents()
    from workstation.io.atomic import atomic_path

    target = Path(screenshot)
    with atomic_path(target) as tmp:
        if not window.grab().save(str(tmp), "PNG"):
            raise OSError(f"{target}: could not write the screenshot")
    since = "process start" if offset is not None else "the app module was started"
    case_s = f"{marks['case']:.2f} s (CPU time {marks['case_cpu']:.2f} s)" if "case" in marks else "-"
    say(f"start-up (since {since}): window shown {marks['window']:.2f} s, slice views show the case "  # type: ignore[operator]
        f"{case_s}, 3D view ready {marks['3d']:.2f} s ({window.view3d.reason or 'interactive'}); "
        f"screenshot {target}")
    window.close()
    app.processEvents()
    return 0
