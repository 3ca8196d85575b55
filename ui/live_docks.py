"""The Live, Outputs and Replay panels as docks of the main window, and the "Live" menu that shows them.

The docks join the right-hand tab group but start hidden: every extra tab widens that dock area for all
panels, and the live twin is used in specific sessions. The menu (or a restored window state) shows them.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDockWidget, QWidget

from ui.live_panel import LivePanel
from ui.outputs_panel import OutputsPanel
from ui.replay_panel import ReplayPanel


def _dock(window: Any, title: str, name: str, panel: QWidget, after: QDockWidget) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(panel)
    window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
    window.tabifyDockWidget(after, dock)
    dock.hide()
    return dock


def show_dock(dock: QDockWidget) -> None:
    dock.show()
    dock.raise_()


def install_live_docks(window: Any) -> None:
    """Add ``window.live_panel`` / ``live_dock``, ``window.outputs_panel`` / ``outputs_dock``,
    ``window.replay_panel`` / ``replay_dock`` and a Live menu (before Help). Call after the window's views,
    ``run_job``, rehearsal dock and menus exist."""
    window.live_panel = LivePanel(window.document, window.views.values(), window.view3d, window.run_job, window)
    window.live_dock = _dock(window, "Live", "live-dock", window.live_panel, window.rehearsal_dock)
    window.outputs_panel = OutputsPanel(window.document, window.run_job, window)
    window.outputs_dock = _dock(window, "Outputs", "outputs-dock", window.outputs_panel, window.live_dock)
    window.live_panel.session_recorded.connect(window.outputs_panel.refresh_scores)
    window.replay_panel = ReplayPanel(window.document, window.views.values(), window.view3d, window)
    window.replay_dock = _dock(window, "Replay", "replay-dock", window.replay_panel, window.outputs_dock)
    window.live_panel.session_recorded.connect(window.replay_panel.refresh_sessions)

    bar = window.menuBar()
    menu = bar.addMenu("&Live")
    help_action = next((a for a in bar.actions() if a.text() == "&Help"), None)
    if help_action is not None:
        bar.insertMenu(help_action, menu)
    for text, name, dock, shortcut in (
            ("Live twin (tracked tool over OpenIGTLink)", "show-live", window.live_dock, "Ctrl+L"),
            ("Outputs: report, movie, plan export/send, session scores", "show-outputs", window.outputs_dock,
             "Ctrl+Shift+R"),
            ("Replay a recorded session", "show-replay", window.replay_dock, "Ctrl+Shift+P")):
        action = QAction(text, window)
        action.setObjectName(name)
        action.setShortcut(shortcut)
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda _=False, d=dock: show_dock(d))
        menu.addAction(action)
        window.addAction(action)
