"""JSON sidecars that name the values of a label-map or seeds file.

Accepted forms (value 0, the background, is skipped):

- ``{"5": "liver", "1": "spleen"}`` (a plain mapping, e.g. TotalSegmentator's label names);
- ``{"5": {"name": "liver", "color_rgb": [0.9, 0.5, 0.4]}}``;
- ``{"segments": [{"value": 5, "name": "liver", "color_rgb": [...], "code": {...}}]}`` (what
  :func:`workstation.io.label_files.write_label_map` writes beside a NIfTI), or that list alone.

A malformed sidecar is an :class:`~workstation.errors.InputError` naming it and the reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workstation.errors import InputError


@dataclass(frozen=True)
class SidecarSegment:
    """One described value: its name, and its colour (0..1 RGB) and code when the sidecar gives them."""

    value: int
    name: str
    color_rgb: tuple[float, float, float] | None = None
    code: dict[str, str] | None = None


def _value(raw: Any) -> int:
    if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
        raise ValueError(f"label value {raw!r} is not an integer")
    value = int(str(raw).strip()) if isinstance(raw, str) else int(raw)
    if not 0 <= value <= 65535:
        raise ValueError(f"label value {value} is outside 0..65535")
    return value


def _entry(raw_value: Any, entry: Any) -> SidecarSegment:
    value = _value(raw_value)
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict):
        raise TypeError(f"the entry of label {value} must be a name or an object with 'name'")
    name = entry.get("name", f"label_{value}")
    if not isinstance(name, str):
        raise TypeError(f"the name of label {value} is not text")
    name = "".join(c if c.isprintable() else " " for c in " ".join(name.split())) or f"label_{value}"
    color = entry.get("color_rgb")
    if color is not None:
        if isinstance(color, str) or not hasattr(color, "__len__") or len(color) != 3:
            raise ValueError(f"color_rgb of label {value} must be three numbers in 0..1")
        color = tuple(float(c) for c in color)
        if not all(0.0 <= c <= 1.0 for c in color):
            raise ValueError(f"color_rgb of label {value} must be three numbers in 0..1")
    code = entry.get("code")
    if code is not None and not (isinstance(code, dict) and all(isinstance(v, str) for v in code.values())):
        raise TypeError(f"the code of label {value} must be an object of texts")
    return SidecarSegment(value, name, color, code)  # type: ignore[arg-type]


def read_segment_sidecar(path: str | os.PathLike[str]) -> list[SidecarSegment]:
    """The segments a JSON sidecar describes, by value (background 0 left out).

    Raises
    ------
    InputError : unreadable file, invalid JSON, or entries that are not value -> name (and colour).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data.get("segments", data) if isinstance(data, dict) else data
        if isinstance(entries, dict):
            items = [_entry(k, v) for k, v in entries.items()]
        elif isinstance(entries, list):
            items = []
            for e in entries:
                if not isinstance(e, dict) or "value" not in e:
                    raise TypeError("every item of the list must be an object with 'value' and 'name'")
                items.append(_entry(e["value"], e))
        else:
            raise TypeError("expected an object {value: name} or a list of segments")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the segment sidecar ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        raise InputError(f"{path}: not a readable segment sidecar ({str(exc).splitlines()[0][:120]})") from None
    values = [s.value for s in items]
    if len(set(values)) != len(values):
        raise InputError(f"{path}: not a readable segment sidecar (a label value is described twice)")
    return sorted((s for s in items if s.value != 0), key=lambda s: s.value)
