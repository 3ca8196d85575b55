"""The journal of a case's label-map changes: undo and redo that are saved with the case.

Every change of a label map stored through :func:`workstation.segment_case.store_label_map` (the
``twin segment`` and ``twin edit`` commands and every edit in the app) is recorded in the case as
a :class:`~workstation.model.record.Record` of kind ``"label_edit"``. An entry holds only the
voxels that changed (their flat indices in the ``[k, j, i]`` grid, stored as steps from the
previous index, and their values before and after)
and the segment list and provenance before and after, never a copy of the label map. So an edit
made on the command line can be undone in the app the next day, and the reverse.

An entry is undone (or redone) only when it still applies: the label map's changed voxels must
hold exactly the entry's values after (before) it, and its segment list must be the entry's.
Otherwise the map was changed since by something that is not in the journal and the undo is
refused with :class:`~workstation.errors.InputError`; nothing is half applied.

The journal is linear: a new change after some undos forgets the undone entries (no redo any
more). It keeps at most :data:`MAX_ENTRIES` entries of one label map and :data:`MAX_BYTES` of
changed-voxel data; the oldest entries go first, the newest is always kept.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from workstation.errors import InputError
from workstation.model.case import Case
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.record import Record

KIND = "label_edit"
MAX_ENTRIES = 100
MAX_BYTES = 256 * 1024**2

__all__ = ["KIND", "MAX_BYTES", "MAX_ENTRIES", "Journal", "JournalEntry", "record_change"]


@dataclass(frozen=True)
class JournalEntry:
    """One recorded change of a label map (a view of its record)."""

    record: Record

    @property
    def sequence(self) -> int:
        return int(self.record.meta["sequence"])

    @property
    def description(self) -> str:
        return str(self.record.meta["description"])

    @property
    def done(self) -> bool:
        """True while the change is applied (False after an undo)."""
        return bool(self.record.meta["done"])

    @property
    def changed_voxels(self) -> int:
        return int(self.record.arrays["index_step"].size)

    @property
    def saved_utc(self) -> str:
        return str(self.record.meta["utc"])

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self.record.arrays.values())


def _segments(data: list[dict[str, Any]]) -> tuple[Segment, ...]:
    return tuple(Segment.from_dict(s) for s in data)


class Journal:
    """The journal of one label map of a case (a view: all its state is in the case's records).

    Parameters
    ----------
    case : Case
        The case; undo and redo change its label map and records.
    label_map_id : str
        The label map whose changes are listed.
    """

    def __init__(self, case: Case, label_map_id: str) -> None:
        self.case = case
        self.label_map_id = label_map_id

    def entries(self) -> list[JournalEntry]:
        """The entries of this label map, oldest first."""
        mine = [JournalEntry(r) for r in self.case.records_of(KIND) if r.meta.get("label_map_id") == self.label_map_id]
        return sorted(mine, key=lambda e: e.sequence)

    def can_undo(self) -> bool:
        return any(e.done for e in self.entries())

    def can_redo(self) -> bool:
        entries = self.entries()
        return bool(entries) and not entries[-1].done

    def labels(self) -> list[str]:
        """Descriptions of the changes that can be undone, oldest first."""
        return [e.description for e in self.entries() if e.done]

    def undo(self) -> tuple[LabelMap, JournalEntry]:
        """Undo the latest applied change; returns the label map now in the case and the entry."""
        done = [e for e in self.entries() if e.done]
        if not done:
            raise InputError(f"label map '{self.label_map_id}': nothing to undo")
        return self._apply(done[-1], forward=False)

    def redo(self) -> tuple[LabelMap, JournalEntry]:
        """Redo the earliest undone change; returns the label map now in the case and the entry."""
        undone = [e for e in self.entries() if not e.done]
        if not undone:
            raise InputError(f"label map '{self.label_map_id}': nothing to redo")
        return self._apply(undone[0], forward=True)

    def _apply(self, entry: JournalEntry, *, forward: bool) -> tuple[LabelMap, JournalEntry]:
        meta, arrays = entry.record.meta, entry.record.arrays
        current = self.case.label_maps.get(self.label_map_id)
        if current is None:
            raise InputError(f"label map '{self.label_map_id}' is not in the case")
        index = np.cumsum(arrays["index_step"])
        expected, target = (arrays["before"], arrays["after"]) if forward else (arrays["after"], arrays["before"])
        side = "before" if forward else "after"
        expected_segments = _segments(meta[f"segments_{side}"])
        action = "redo" if forward else "undo"
        if (current.array.size != int(meta["size"]) or current.segments != expected_segments
                or not np.array_equal(current.array.reshape(-1)[index], expected)):
            raise InputError(f"cannot {action} edit {entry.sequence} ({entry.description}): the label map was "
                             "changed since by something not in the case's journal")
        other = "after" if forward else "before"
        array = current.array.astype(np.dtype(meta[f"dtype_{other}"]), copy=True)
        array.reshape(-1)[index] = target
        restored = current.with_array(array, segments=_segments(meta[f"segments_{other}"]),
                                      provenance=dict(meta[f"provenance_{other}"]))
        self.case.replace_label_map(restored)
        record = self.case.add_record(replace(entry.record, meta={**meta, "done": forward}), replace_same_name=True)
        return restored, JournalEntry(record)


def record_change(case: Case, old: LabelMap | None, new: LabelMap, description: str) -> JournalEntry | None:
    """Add the change ``old -> new`` of a label map to the case's journal (``old`` None: a new map).

    Undone entries of that label map are forgotten (a new change ends the redo chain), and the
    oldest beyond the bounds. Returns the entry, or None when nothing changed.

    Raises
    ------
    ValueError
        When ``old`` and ``new`` are not on grids of the same size.
    """
    before_array = np.zeros(new.array.shape, dtype=new.array.dtype) if old is None else old.array
    if before_array.shape != new.array.shape:
        raise ValueError(f"label journal: an edit must keep the grid, got {before_array.shape} -> {new.array.shape}")
    before_segments = () if old is None else old.segments
    before_provenance = {} if old is None else old.provenance
    index = np.flatnonzero(before_array.reshape(-1) != new.array.reshape(-1))
    if index.size == 0 and before_segments == new.segments and before_provenance == new.provenance:
        return None
    journal = Journal(case, new.id)
    done = []
    for entry in journal.entries():
        if entry.done:
            done.append(entry)
        else:
            case.remove_record(entry.record.id)
    sequence = done[-1].sequence + 1 if done else 1
    record = case.add_record(Record(
        kind=KIND, name=f"{new.id} edit {sequence}",
        meta={"label_map_id": new.id, "sequence": sequence, "description": description, "done": True,
              "utc": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "size": int(new.array.size),
              "dtype_before": before_array.dtype.str, "dtype_after": new.array.dtype.str,
              "segments_before": [s.to_dict() for s in before_segments],
              "segments_after": [s.to_dict() for s in new.segments],
              "provenance_before": before_provenance, "provenance_after": new.provenance},
        # the flat indices as steps from the previous one: runs of 1 that compress to almost nothing on disk
        arrays={"index_step": np.diff(index, prepend=0), "before": before_array.reshape(-1)[index],
                "after": new.array.reshape(-1)[index]}))
    _trim(journal)
    return JournalEntry(record)


def _trim(journal: Journal) -> None:
    """Forget the oldest entries beyond :data:`MAX_ENTRIES` or :data:`MAX_BYTES` (keeping the newest)."""
    entries = journal.entries()
    total = sum(e.nbytes for e in entries)
    while len(entries) > 1 and (len(entries) > MAX_ENTRIES or total > MAX_BYTES):
        oldest = entries.pop(0)
        total -= oldest.nbytes
        journal.case.remove_record(oldest.record.id)

