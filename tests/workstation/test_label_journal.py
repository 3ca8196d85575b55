"""The case's journal of label-map changes: exact undo/redo, saved with the case, bounded, refused when stale."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from segmentation.labels import empty_label_map, set_segment
from workstation import label_journal, segment_case
from workstation.bundle import load_case, save_case
from workstation.errors import InputError
from workstation.label_journal import Journal
from workstation.model import Volume
from workstation.model.case import Case
from workstation.model.mesh import SurfaceMesh


def _case() -> tuple[Case, Volume]:
    volume = Volume.from_geometry(np.zeros((12, 30, 40), np.int16), spacing_mm=(0.7, 0.9, 2.0),
                                  origin_lps=(-10, -12, -8), modality="CT")
    case = Case(name="journal")
    return case, case.add_volume(volume)


def _ball(shape: tuple[int, int, int], center: tuple[int, int, int], radius: float) -> np.ndarray:
    k, j, i = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return (k - center[0]) ** 2 + (j - center[1]) ** 2 + (i - center[2]) ** 2 <= radius**2


def _edits(case: Case, volume: Volume) -> list:  # type: ignore[type-arg]
    """Three stored changes; returns the label maps after each (the first is the empty map)."""
    empty = replace(empty_label_map(volume), id=segment_case.label_map_id(volume))
    organ, lesion = _ball(volume.shape, (6, 15, 20), 5), _ball(volume.shape, (6, 15, 24), 2)
    one = segment_case.store_label_map(case, set_segment(empty, organ, name="organ"), description="organ")
    two = segment_case.store_label_map(case, set_segment(one, lesion, name="lesion"), description="lesion")
    three = segment_case.store_label_map(case, replace(two, provenance={"lesion": {"tool": "paint"}}),
                                         description="provenance only")
    return [empty, one, two, three]


def _same(a, b) -> None:  # type: ignore[no-untyped-def]
    np.testing.assert_array_equal(a.array, b.array)
    assert a.array.dtype == b.array.dtype and a.segments == b.segments and a.provenance == b.provenance


def test_undo_and_redo_restore_every_state_exactly_and_store_only_changed_voxels() -> None:
    case, volume = _case()
    states = _edits(case, volume)
    journal = Journal(case, states[-1].id)
    assert journal.labels() == ["organ", "lesion", "provenance only"]
    lesion_entry = journal.entries()[1]
    assert lesion_entry.changed_voxels == int((states[2].array != states[1].array).sum()) > 0
    assert lesion_entry.nbytes < states[2].array.nbytes  # the changed voxels, not a copy of the map
    for expected in reversed(states[:-1]):
        restored, _ = journal.undo()
        _same(restored, expected)
        _same(case.label_maps[restored.id], expected)
    assert not journal.can_undo() and journal.can_redo()
    with pytest.raises(InputError, match="nothing to undo"):
        journal.undo()
    for expected in states[1:]:
        restored, _ = journal.redo()
        _same(restored, expected)
    with pytest.raises(InputError, match="nothing to redo"):
        journal.redo()


def test_a_new_change_after_an_undo_ends_the_redo_chain_and_no_change_is_not_recorded() -> None:
    case, volume = _case()
    states = _edits(case, volume)
    journal = Journal(case, states[-1].id)
    journal.undo()
    journal.undo()
    segment_case.store_label_map(case, set_segment(states[1], _ball(volume.shape, (3, 5, 5), 2), name="other"),
                                 description="other")
    assert journal.labels() == ["organ", "other"] and not journal.can_redo()
    assert [e.sequence for e in journal.entries()] == [1, 2]  # the forgotten entries' numbers are reused
    assert label_journal.record_change(case, case.label_maps[states[1].id], case.label_maps[states[1].id],
                                       "nothing") is None


def test_the_journal_is_saved_with_the_case_and_undo_drops_surfaces_of_the_old_labels(tmp_path: Path) -> None:
    case, volume = _case()
    states = _edits(case, volume)
    case.add_mesh(SurfaceMesh(vertices_lps=np.eye(3), triangles=np.array([[0, 1, 2]]), name="organ",
                              segment="organ", provenance={"label_map_id": states[-1].id}))
    save_case(case, tmp_path / "case")
    loaded = load_case(tmp_path / "case")
    journal = Journal(loaded, states[-1].id)
    assert journal.labels() == ["organ", "lesion", "provenance only"]
    journal.undo()
    restored, entry = journal.undo()
    _same(restored, states[1])
    assert entry.description == "lesion" and not entry.done and not loaded.meshes
    save_case(loaded, tmp_path / "case")
    again = Journal(load_case(tmp_path / "case"), states[-1].id)
    assert again.labels() == ["organ"] and again.can_redo()
    _same(again.redo()[0], states[2])


def test_undo_is_refused_when_the_labels_changed_outside_the_journal() -> None:
    case, volume = _case()
    states = _edits(case, volume)
    journal = Journal(case, states[-1].id)
    array = states[-1].array.copy()
    array[6, 15, 24] = 0  # a lesion voxel, changed by something that does not record
    case.replace_label_map(states[-1].with_array(array))
    journal.undo()  # the provenance-only entry still applies
    stale = case.label_maps[states[-1].id]
    with pytest.raises(InputError, match="cannot undo edit 2 \\(lesion\\): the label map was changed since"):
        journal.undo()
    assert case.label_maps[states[-1].id] is stale and journal.labels() == ["organ", "lesion"]


def test_a_change_of_dtype_is_undone_to_the_old_dtype() -> None:
    case, volume = _case()
    states = _edits(case, volume)
    wide = set_segment(states[-1], _ball(volume.shape, (2, 5, 5), 1.5), name="many", value=300)
    assert wide.array.dtype == np.uint16 != states[-1].array.dtype
    segment_case.store_label_map(case, wide, description="value 300")
    restored, _ = Journal(case, wide.id).undo()
    _same(restored, states[-1])


def test_the_journal_is_bounded_by_entries_and_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    case, volume = _case()
    monkeypatch.setattr(label_journal, "MAX_ENTRIES", 2)
    states = _edits(case, volume)
    journal = Journal(case, states[-1].id)
    assert journal.labels() == ["lesion", "provenance only"]
    assert [e.sequence for e in journal.entries()] == [2, 3]
    monkeypatch.setattr(label_journal, "MAX_BYTES", 1)
    segment_case.store_label_map(case, set_segment(states[-1], _ball(volume.shape, (2, 5, 5), 1.5), name="dot"),
                                 description="dot")
    assert journal.labels() == ["dot"]  # the newest entry is always kept
    assert len(case.records_of(label_journal.KIND)) == 1
