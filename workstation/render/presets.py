"""CT display presets: window/level for slices and transfer functions for volume rendering (Hounsfield units)."""

from __future__ import annotations

from dataclasses import dataclass

from workstation.errors import InputError

# (width, level) in HU; the usual radiology reading windows.
WINDOW_LEVELS: dict[str, tuple[float, float]] = {
    "bone": (2000.0, 400.0),
    "soft_tissue": (400.0, 40.0),
    "abdomen": (350.0, 50.0),
    "liver": (150.0, 60.0),
    "lung": (1500.0, -600.0),
    "brain": (80.0, 40.0),
    "vessels": (600.0, 170.0),
}

# The look: light bone on a dark background.
BACKGROUND_RGB = (0.08, 0.09, 0.11)
BONE_RGB = (0.95, 0.92, 0.84)


@dataclass(frozen=True)
class VolumePreset:
    """A volume-rendering transfer function: colour and opacity control points over HU.

    Attributes
    ----------
    colors : ((hu, (r, g, b)), ...) with r, g, b in 0..1.
    opacities : ((hu, opacity), ...) per unit length; opacity in 0..1.
    shade : whether to light the volume with its gradient.
    """

    name: str
    colors: tuple[tuple[float, tuple[float, float, float]], ...]
    opacities: tuple[tuple[float, float], ...]
    shade: bool = True


VOLUME_PRESETS: dict[str, VolumePreset] = {
    "bone": VolumePreset(
        "bone",
        colors=((-1000.0, (0.0, 0.0, 0.0)), (150.0, (0.55, 0.25, 0.15)), (300.0, (0.9, 0.82, 0.66)),
                (1200.0, (1.0, 1.0, 0.95)), (3000.0, (1.0, 1.0, 1.0))),
        opacities=((-1000.0, 0.0), (140.0, 0.0), (250.0, 0.35), (600.0, 0.8), (3000.0, 0.95)),
    ),
    "soft_tissue": VolumePreset(
        "soft_tissue",
        colors=((-1000.0, (0.0, 0.0, 0.0)), (-100.0, (0.75, 0.55, 0.4)), (40.0, (0.85, 0.45, 0.38)),
                (200.0, (0.95, 0.85, 0.75)), (3000.0, (1.0, 1.0, 1.0))),
        opacities=((-1000.0, 0.0), (-200.0, 0.0), (-60.0, 0.05), (60.0, 0.25), (300.0, 0.6), (3000.0, 0.8)),
    ),
    "vessels": VolumePreset(
        "vessels",
        colors=((-1000.0, (0.0, 0.0, 0.0)), (100.0, (0.6, 0.1, 0.08)), (250.0, (0.95, 0.25, 0.2)),
                (500.0, (1.0, 0.85, 0.8)), (3000.0, (1.0, 1.0, 1.0))),
        opacities=((-1000.0, 0.0), (120.0, 0.0), (180.0, 0.4), (450.0, 0.7), (700.0, 0.15), (3000.0, 0.1)),
    ),
}


def parse_window_level(text: str) -> tuple[float, float]:
    """``"bone"`` or ``"W,L"`` (HU) -> (width, level)."""
    if text in WINDOW_LEVELS:
        return WINDOW_LEVELS[text]
    try:
        width, level = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--window-level {text!r}: expected W,L in HU or one of {', '.join(WINDOW_LEVELS)}") from None
    if not width > 0:
        raise InputError(f"--window-level {text!r}: the width must be > 0")
    return width, level


def volume_preset(name: str) -> VolumePreset:
    if name not in VOLUME_PRESETS:
        raise InputError(f"--volume-preset {name!r}: expected one of {', '.join(VOLUME_PRESETS)}")
    return VOLUME_PRESETS[name]
