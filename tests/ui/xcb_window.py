"""Pieces for the app scripts that :func:`tests.ui.xcb.run_app_script` runs in a child Python on Xvfb.

Imported only inside those scripts. :func:`shown_window` selects Qt's xcb platform just before it
makes the application: test modules the scripts import may have chosen offscreen.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from tests.workstation.live.phantom import AORTA_CENTER, AORTA_RADIUS, sphere
from workstation.model import Case, Plan, Trajectory, Volume


def shown_window(case: Case, *, size: tuple[int, int] = (1200, 800)) -> tuple[Any, Any]:
    """(app, main window) shown on the display with ``case`` open."""
    os.environ["QT_QPA_PLATFORM"] = "xcb"
    from ui.app import application
    from ui.main_window import MainWindow

    app = application()
    window = MainWindow()
    window.resize(*size)
    window.show()
    window.document.set_case(case)
    return app, window


def wait_for_3d(app: Any, window: Any, *, tries: int = 300) -> Any:
    """The window's 3D view once it is ready (or has given up: its ``reason`` then says why)."""
    view = window.view3d
    for _ in range(tries):
        app.processEvents()
        if view.ready:
            break
        time.sleep(0.02)
    return view


def aorta_case(name: str) -> Case:
    """A 4 mm CT block, the phantom aorta and one trajectory along +S that passes beside it."""
    case = Case(name=name)
    case.add_mesh(sphere("aorta", tuple(AORTA_CENTER), AORTA_RADIUS))
    case.set_plan(Plan(trajectories=(Trajectory("t1", (0.0, 0.0, 0.0), (0.0, 0.0, 100.0), tool_diameter_mm=2.0),)))
    affine = np.diag([4.0, 4.0, 4.0, 1.0])
    affine[:3, 3] = (-60.0, -60.0, -20.0)
    case.add_volume(Volume(array=np.full((40, 30, 30), -50, dtype=np.int16), ijk_to_lps=affine, modality="CT"))
    return case
