"""Undo/redo of label-map edits, storing only the changed region of each edit."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from numpy.typing import NDArray

from workstation.model.labelmap import LabelMap, Segment


@dataclass(frozen=True)
class _Change:
    box: tuple[slice, slice, slice]
    before: NDArray[np.integer]
    after: NDArray[np.integer]
    segments_before: tuple[Segment, ...]
    segments_after: tuple[Segment, ...]
    label: str

    @property
    def nbytes(self) -> int:
        return self.before.nbytes + self.after.nbytes


@dataclass
class EditHistory:
    """A bounded undo/redo stack for one label map.

    ``record(old, new, label)`` stores the bounding box of the voxels that changed (and the
    segment list) and returns ``new``; ``undo(current)`` / ``redo(current)`` return the label
    map before / after the last edit. The oldest edits are forgotten beyond ``max_bytes``.
    """

    max_bytes: int = 256 * 1024**2
    _undo: list[_Change] = field(default_factory=list)
    _redo: list[_Change] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self._undo) + sum(c.nbytes for c in self._redo)

    def can_undo(self) -> bool:
        return bool(self._undo)

    def can_redo(self) -> bool:
        return bool(self._redo)

    def labels(self) -> list[str]:
        """Descriptions of the edits that can be undone, oldest first."""
        return [c.label for c in self._undo]

    def record(self, old: LabelMap, new: LabelMap, label: str) -> LabelMap:
        if old.array.shape != new.array.shape:
            raise ValueError("an edit must keep the label map's grid")
        changed = old.array != new.array
        if changed.any():
            index = np.nonzero(changed)
            box = tuple(slice(int(ix.min()), int(ix.max()) + 1) for ix in index)
        else:
            box = (slice(0, 0),) * 3
        change = _Change(box, old.array[box].copy(), new.array[box].copy(), old.segments, new.segments, label)  # type: ignore[arg-type]
        self._undo.append(change)
        self._redo.clear()
        while len(self._undo) > 1 and self.nbytes > self.max_bytes:
            self._undo.pop(0)
        return new

    def _apply(self, current: LabelMap, change: _Change, forward: bool) -> LabelMap:
        array = current.array.copy()
        array[change.box] = change.after if forward else change.before
        return replace(current, array=array, segments=change.segments_after if forward else change.segments_before)

    def undo(self, current: LabelMap) -> LabelMap:
        if not self._undo:
            raise IndexError("nothing to undo")
        change = self._undo.pop()
        self._redo.append(change)
        return self._apply(current, change, forward=False)

    def redo(self, current: LabelMap) -> LabelMap:
        if not self._redo:
            raise IndexError("nothing to redo")
        change = self._redo.pop()
        self._undo.append(change)
        return self._apply(current, change, forward=True)
