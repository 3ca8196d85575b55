"""The README picture: the app on the sample CT after the sample's segmentation steps, surfaces in 3D.

``python -m ui.showcase docs/app.png`` (under a display or ``xvfb-run`` for the 3D view) opens the
bundled sample, runs the steps of its ``seeds.json`` through the segment editor (presets, seed
strokes, grow from seeds), builds the surfaces and saves a grab of the window.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import QApplication

from ui.app import application, wait_until_idle
from ui.document import SEED_BACKGROUND
from ui.main_window import MainWindow
from workstation.io.atomic import atomic_path
from workstation.samples import SAMPLES_DIR


def run_sample_steps(window: MainWindow) -> None:
    """The sample's seeds.json steps, as a user would do them in the segment editor."""
    doc = window.document
    plan = json.loads((SAMPLES_DIR / "ct-abdomen-20" / "seeds.json").read_text(encoding="utf-8"))
    for step in plan["steps"]:
        if step["tool"] == "preset":
            doc.apply_preset(step["preset"], step["segment"], points_lps=step.get("points_lps"))
        elif step["tool"] == "grow_from_seeds":
            radius = float(step["brush_radius_mm"])
            for name, points in step["structures"].items():
                value = doc.add_segment(name).value
                for point in points:
                    doc.paint_seed(point, radius, value)
            for points in step["background"].values():
                for point in points:
                    doc.paint_seed(point, radius, SEED_BACKGROUND)
            window.segment_panel.grow()
            wait_until_idle(window, timeout_s=600)


def planning_summary(window: MainWindow) -> str:
    return window.planning_panel.result_label.text()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0] if args else "docs/app.png")
    started = time.monotonic()
    app = application()
    window = MainWindow()
    window.resize(1600, 1000)
    window.show()
    window.open_sample()
    wait_until_idle(window)
    run_sample_steps(window)
    window.segment_panel.build_surfaces()
    wait_until_idle(window, timeout_s=600)
    doc = window.document
    liver = doc.label_map.mask("liver") if any(s.name == "liver" for s in doc.segments()) else None
    if liver is not None and liver.any():
        k, j, i = (float(np.median(axis)) for axis in np.nonzero(liver))
        aim = doc.volume.ijk_to_lps_points([i, j, k])
        doc.set_crosshair(aim)
        # A biopsy trajectory into the liver from the patient's right side, checked for safety.
        planning = window.planning_panel
        planning.point_picked("trajectory", aim + (-75.0, 10.0, 0.0))
        planning.point_picked("trajectory", aim)
        planning.check_selected()
        wait_until_idle(window, timeout_s=600)
    for _ in range(100):
        app.processEvents()
        if window.view3d.ready:
            break
        time.sleep(0.05)
    window.view3d.refresh()
    app.processEvents()
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        window.grab().save(str(tmp), "PNG")
    print(f"{target}: {len(doc.segments())} segments, {len(doc.case.meshes)} surfaces, "
          f"{planning_summary(window)}, "
          f"{time.monotonic() - started:.1f} s; 3D view: {window.view3d.reason or 'on'}")
    window.document.modified = False
    window.close()
    QApplication.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
