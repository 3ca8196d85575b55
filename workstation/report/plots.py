"""Matplotlib plots for reports, returned as PNG bytes (Agg backend, no window)."""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import ArrayLike


def force_displacement_png(tool_displacement_mm: ArrayLike, tool_force_n: ArrayLike, *, title: str = "",
                           size_in: tuple[float, float] = (6.0, 3.6), dpi: int = 100) -> bytes:
    """PNG of tool force magnitude (N) against tool travel (mm).

    ``tool_force_n`` is (S,) magnitudes or (S, 3) vectors (their norm is plotted).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    travel = np.asarray(tool_displacement_mm, dtype=float).reshape(-1)
    force = np.asarray(tool_force_n, dtype=float)
    if force.ndim == 2:
        force = np.linalg.norm(force, axis=1)
    force = force.reshape(-1)
    if travel.shape != force.shape or travel.size == 0:
        raise ValueError(f"force-displacement plot: {travel.size} displacements for {force.size} forces")
    fig = Figure(figsize=size_in, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(travel, force, marker="o", markersize=3, color="#1f77b4")
    ax.set_xlabel("tool displacement (mm)")
    ax.set_ylabel("tool force |F| (N)")
    ax.set_title(title or "tool force against displacement")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
