"""Named results a case keeps beside its anatomy: simulation results, saved cameras, recorded sessions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workstation.model.volume import frozen_array

RECORD_KINDS = ("simulation", "camera", "session", "safety", "label_edit", "other")


@dataclass(frozen=True)
class Record:
    """One result stored in a case bundle.

    Attributes
    ----------
    kind : what it is; one of :data:`RECORD_KINDS` (``"simulation"``, ``"camera"``, ``"session"``, ...).
    meta : JSON-serialisable description. Geometry in LPS mm; every quantity's unit in its key
        (``max_displacement_mm``, ``force_n``).
    arrays : named numeric arrays (for example ``displacement_mm`` (N, 3)); stored read-only.
    name : what a user calls it; ``id`` is assigned by the case.
    """

    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str = ""
    id: str = ""
    coordinate_system: str = "LPS"

    def __post_init__(self) -> None:
        if self.kind not in RECORD_KINDS:
            raise ValueError(f"Record: kind {self.kind!r} is not one of {', '.join(RECORD_KINDS)}")
        try:
            json.dumps(self.meta, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"Record {self.name!r}: meta is not JSON-serialisable ({exc})") from None
        arrays = {}
        for key, value in self.arrays.items():
            array = np.asarray(value)
            if array.dtype == object:
                raise ValueError(f"Record {self.name!r}: array {key!r} is not numeric")
            arrays[str(key)] = frozen_array(array)
        object.__setattr__(self, "arrays", arrays)
