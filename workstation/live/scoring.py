"""Scores of a recorded session against its plan, comparisons of sessions, and a session report.

Definitions (image LPS mm; E planned entry, G planned target, d the planned unit direction):

- executed line: least-squares line through the recorded tip positions (SVD), oriented along d; when the
  tip hardly moved (< 3 mm spread) the median tool axis through the median tip is used instead;
- ``entry_deviation_mm``: distance from E to where the executed line crosses the plane through E
  perpendicular to d (where the path went through the skin);
- ``target_deviation_mm``: distance from G to the deepest point reached, i.e. the executed line at the
  largest (0.1 s moving-median smoothed) depth of the tip along it;
- ``angle_deg``: angle between the executed line and d; ``tool_axis_angle_deg`` the median angle of the
  tracked tool axis to d;
- ``time_taken_s``: from the tip first advancing 1 mm past its starting depth to first coming within 1 mm
  of its deepest depth (smoothed);
- ``breaches`` / ``breach_duration_s``: number of alarm episodes and their total time;
- times are the tracker's own time stamps (``sent_time_s``, shifted to start with ``t_s``) when every pose
  has one and they never decrease, else the arrival times ``t_s``;
- ``peak_force_n``: largest ``force_n``/``peak_force_n`` of the ``simulation`` events or of a ``force_n``
  array (``None`` when mechanics was off).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError
from workstation.io.atomic import atomic_path, write_text_atomic
from workstation.live.pose import angle_between_deg, tips_and_axes, unit
from workstation.live.session import check_session
from workstation.model import Record

ADVANCE_THRESHOLD_MM = 1.0


@dataclass(frozen=True)
class SessionScore:
    """A session's scores (see the module docstring for the definitions)."""

    name: str
    trajectory: str
    entry_deviation_mm: float
    target_deviation_mm: float
    angle_deg: float
    tool_axis_angle_deg: float
    time_taken_s: float
    duration_s: float
    breaches: int
    breach_duration_s: float
    min_structure_distance_mm: float | None
    nearest_structure: str | None
    peak_force_n: float | None
    n_poses: int
    messages_dropped: int
    executed_entry_lps: tuple[float, float, float]
    executed_target_lps: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(coordinate_system="LPS", units={"deviation": "mm", "angle": "degrees", "time": "s",
                                                    "force": "N"})
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in data.items()}

    def lines(self) -> list[str]:
        """Human-readable lines."""
        out = [f"session {self.name!r} (trajectory {self.trajectory!r}, {self.n_poses} poses, "
               f"{self.duration_s:.1f} s, {self.messages_dropped} dropped)",
               f"  entry deviation   {self.entry_deviation_mm:7.2f} mm",
               f"  target deviation  {self.target_deviation_mm:7.2f} mm",
               f"  angle             {self.angle_deg:7.2f} deg (tool axis {self.tool_axis_angle_deg:.2f} deg)",
               f"  time taken        {self.time_taken_s:7.2f} s",
               f"  safety breaches   {self.breaches:4d} ({self.breach_duration_s:.2f} s)"]
        if self.min_structure_distance_mm is not None:
            out.append(f"  closest approach  {self.min_structure_distance_mm:7.2f} mm ({self.nearest_structure})")
        out.append(f"  peak tissue force {self.peak_force_n:7.2f} N" if self.peak_force_n is not None
                   else "  peak tissue force n/a (mechanics off)")
        return out


def _moving_median(values: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    if window <= 1 or len(values) < 3:
        return values.copy()
    from scipy.ndimage import median_filter

    return median_filter(values, size=window, mode="nearest")


def _planned(record: Record) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    try:
        return np.asarray(record.meta["entry_lps"], dtype=float), np.asarray(record.meta["target_lps"], dtype=float)
    except (KeyError, TypeError, ValueError):
        raise InputError(f"session {record.name!r}: meta lacks the planned entry_lps/target_lps") from None


def _breaches(t: NDArray[np.float64], alarm: NDArray[np.bool_]) -> tuple[int, float]:
    if len(t) == 0 or not alarm.any():
        return 0, 0.0
    dt = np.diff(t, append=t[-1] + (np.median(np.diff(t)) if len(t) > 1 else 0.0))
    starts = np.count_nonzero(alarm & ~np.concatenate([[False], alarm[:-1]]))
    return int(starts), float(dt[alarm].sum())


def _peak_force(record: Record) -> float | None:
    forces = [float(e[k]) for e in record.meta.get("events", []) if e.get("kind") == "simulation"
              for k in ("force_n", "peak_force_n") if isinstance(e.get(k), int | float)]
    if "force_n" in record.arrays and record.arrays["force_n"].size:
        forces.append(float(np.nanmax(np.abs(record.arrays["force_n"]))))
    return max(forces) if forces else None


def session_times(record: Record) -> NDArray[np.float64]:
    """Per-pose times (s) for scoring: the sender's time stamps when usable, else the arrival times."""
    t = np.asarray(record.arrays["t_s"], dtype=float)
    sent = record.arrays.get("sent_time_s")
    if sent is not None and sent.shape == t.shape and len(t) and np.all(np.isfinite(sent)) and \
            np.all(np.diff(sent) >= 0):
        return sent - sent[0] + t[0]
    return t


def score_session(record: Record) -> SessionScore:
    """Scores of one recorded session (see the module docstring)."""
    check_session(record)
    a = record.arrays
    t = session_times(record)
    if len(t) < 2:
        raise InputError(f"session {record.name!r}: {len(t)} pose(s) recorded; at least 2 are needed to score")
    entry, target = _planned(record)
    d = unit(target - entry)
    tips, axes = tips_and_axes(a["pose"])
    center = tips.mean(axis=0)
    spread = np.linalg.svd(tips - center, full_matrices=False)
    if spread[1][0] > 3.0 * np.sqrt(len(tips)) / np.sqrt(12):  # tip moved well beyond noise (3 mm range)
        v = spread[2][0]
    else:
        v = unit(np.median(axes, axis=0))
        center = np.median(tips, axis=0)
    v = v if v @ d >= 0 else -v

    cos = float(v @ d)
    entry_point = center + v * (float((entry - center) @ d) / cos) if cos > 1e-6 else center
    rate = (len(t) - 1) / max(t[-1] - t[0], 1e-9)
    along = _moving_median((tips - center) @ v, max(1, int(round(0.1 * rate)) | 1))
    deepest = int(np.argmax(along))
    target_point = center + v * along[deepest]
    start_depth = along[0]
    began = np.flatnonzero(along > start_depth + ADVANCE_THRESHOLD_MM)
    arrived = np.flatnonzero(along >= along[deepest] - ADVANCE_THRESHOLD_MM)
    time_taken = float(t[arrived[0]] - t[began[0]]) if len(began) and arrived[0] >= began[0] else 0.0

    alarm = a["alarm"].astype(bool) if "alarm" in a else np.zeros(len(t), bool)
    count, duration = _breaches(t, alarm)
    names = list(record.meta.get("structure_names", []))
    closest: float | None = None
    nearest: str | None = None
    sd = a.get("structure_distance_mm")
    if sd is not None and sd.size and sd.shape[1] == len(names):
        per = sd.min(axis=0)
        nearest = names[int(np.argmin(per))]
        closest = float(per.min())
    return SessionScore(
        name=record.name, trajectory=str(record.meta.get("trajectory", "")),
        entry_deviation_mm=float(np.linalg.norm(entry_point - entry)),
        target_deviation_mm=float(np.linalg.norm(target_point - target)),
        angle_deg=float(angle_between_deg(v, d)),
        tool_axis_angle_deg=float(np.median(angle_between_deg(axes, d))),
        time_taken_s=time_taken, duration_s=float(t[-1] - t[0]), breaches=count, breach_duration_s=duration,
        min_structure_distance_mm=closest, nearest_structure=nearest, peak_force_n=_peak_force(record),
        n_poses=len(t), messages_dropped=int(record.meta.get("messages_dropped", 0)),
        executed_entry_lps=tuple(float(x) for x in entry_point),  # type: ignore[arg-type]
        executed_target_lps=tuple(float(x) for x in target_point))  # type: ignore[arg-type]


def _save_figure(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=path.suffix.lstrip(".").lower() or "png")
    finally:
        plt.close(fig)
    return path


def plot_session(record: Record, path: str | os.PathLike[str]) -> Path:
    """Timeline PNG of one session: distance to target, lateral deviation, angle, structure distances with
    the safety margin, alarms shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    check_session(record)
    a = record.arrays
    t = a["t_s"]
    fig, axs = plt.subplots(3, 1, figsize=(8, 7.5), sharex=True)
    axs[0].plot(t, a["distance_to_target_mm"], label="tip to target")
    axs[0].plot(t, a["lateral_deviation_mm"], label="lateral deviation")
    axs[0].set_ylabel("mm")
    axs[1].plot(t, a["angle_deg"], color="tab:purple")
    axs[1].set_ylabel("angle to plan (deg)")
    names = record.meta.get("structure_names", [])
    for n, name in enumerate(names):
        axs[2].plot(t, a["structure_distance_mm"][:, n], label=name)
    if "margin_mm" in record.meta:
        axs[2].axhline(record.meta["margin_mm"], color="red", linestyle="--", label="safety margin")
    axs[2].set_ylabel("tool to structure (mm)")
    axs[2].set_xlabel("time (s)")
    alarm = a["alarm"].astype(bool)
    for ax in axs:
        if alarm.any():
            ax.fill_between(t, 0, 1, where=alarm, transform=ax.get_xaxis_transform(), color="red", alpha=0.15)
        ax.grid(alpha=0.3)
    axs[0].legend(loc="upper right", fontsize=8)
    if names:
        axs[2].legend(loc="upper right", fontsize=8)
    fig.suptitle(f"session {record.name!r} - trajectory {record.meta.get('trajectory', '')!r}")
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def plot_comparison(scores: Sequence[SessionScore], path: str | os.PathLike[str]) -> Path:
    """Bar charts of several sessions' scores in the order given (progress over sessions, a trainee
    against the plan = 0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not scores:
        raise InputError("session compare: no session given")
    labels = [s.name for s in scores]
    panels = [("entry_deviation_mm", "entry deviation (mm)"), ("target_deviation_mm", "target deviation (mm)"),
              ("angle_deg", "angle (deg)"), ("time_taken_s", "time taken (s)"),
              ("breaches", "safety breaches"), ("breach_duration_s", "breach time (s)")]
    fig, axs = plt.subplots(2, 3, figsize=(11, 6))
    x = np.arange(len(scores))
    for ax, (key, title) in zip(axs.ravel(), panels, strict=True):
        values = [float(getattr(s, key)) for s in scores]
        ax.bar(x, values, color="tab:blue")
        ax.plot(x, values, color="tab:orange", marker="o", linewidth=1)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("sessions against the plan (0 = as planned)")
    fig.tight_layout()
    return _save_figure(fig, Path(path))


def write_session_report(record: Record, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """``<name>.json`` (scores), ``<name>-timeline.png`` and ``<name>.html`` in ``folder`` (atomic files)."""
    folder = Path(folder)
    if not folder.is_dir():
        from workstation.errors import OutputError

        raise OutputError(f"{folder}: not an existing folder")
    score = score_session(record)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in record.name) or "session"
    json_path = folder / f"{stem}.json"
    png_path = plot_session(record, folder / f"{stem}-timeline.png")
    write_text_atomic(json_path, json.dumps(score.to_dict(), indent=1))
    events = record.meta.get("events", [])
    rows = "".join(f"<tr><td>{e.get('t_s', 0):.2f}</td><td>{e.get('kind')}</td>"
                   f"<td>{_html(json.dumps({k: v for k, v in e.items() if k not in ('t_s', 'kind')}))}</td></tr>"
                   for e in events)
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>session {_html(record.name)}</title></head>"
            f"<body><h1>Session {_html(record.name)}</h1><pre>{_html(chr(10).join(score.lines()))}</pre>"
            f"<img src='{png_path.name}' alt='timeline'><h2>Events</h2><table border='1'>"
            f"<tr><th>t (s)</th><th>kind</th><th>data</th></tr>{rows}</table></body></html>")
    html_path = folder / f"{stem}.html"
    write_text_atomic(html_path, html)
    return {"json": json_path, "png": png_path, "html": html_path}


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
