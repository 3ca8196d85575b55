"""The case: the one mutable hub that holds a patient's data by id and announces changes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from workstation.events import Signal
from workstation.model.labelmap import LabelMap
from workstation.model.mesh import SurfaceMesh, TetMesh
from workstation.model.plan import Plan
from workstation.model.record import Record
from workstation.model.registration import Registration
from workstation.model.volume import Volume

T = TypeVar("T", Volume, LabelMap, SurfaceMesh, TetMesh, Registration, Record)


class CaseEvents:
    """Signals a case emits; each passes the object (or id) concerned."""

    def __init__(self) -> None:
        self.volume_added = Signal("volume_added")
        self.volume_removed = Signal("volume_removed")
        self.label_map_added = Signal("label_map_added")
        self.label_map_changed = Signal("label_map_changed")
        self.label_map_removed = Signal("label_map_removed")
        self.mesh_added = Signal("mesh_added")
        self.mesh_removed = Signal("mesh_removed")
        self.tet_mesh_added = Signal("tet_mesh_added")
        self.plan_changed = Signal("plan_changed")
        self.registration_added = Signal("registration_added")
        self.record_added = Signal("record_added")
        self.record_removed = Signal("record_removed")


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40] or "item"


@dataclass
class Case:
    """A patient's working data: volumes, label maps, meshes, plan and registrations, by id.

    Objects are immutable; changing one means putting a new object under the same id
    (``replace_label_map``), which emits the matching event. Ids are unique per kind.

    Attributes
    ----------
    name : a label for the case (never a patient name unless PHI was kept on purpose).
    deidentification : what de-identification did on import (attribute names, never values).
    log : import and processing messages worth keeping (no PHI).
    source_headers : per volume id, the (de-identified) DICOM JSON headers of its source planes,
        so later DICOM exports (SEG, reports) can reference the series.
    """

    name: str = "case"
    volumes: dict[str, Volume] = field(default_factory=dict)
    label_maps: dict[str, LabelMap] = field(default_factory=dict)
    meshes: dict[str, SurfaceMesh] = field(default_factory=dict)
    tet_meshes: dict[str, TetMesh] = field(default_factory=dict)
    registrations: dict[str, Registration] = field(default_factory=dict)
    records: dict[str, Record] = field(default_factory=dict)
    plan: Plan = field(default_factory=Plan)
    deidentification: dict[str, Any] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    source_headers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    events: CaseEvents = field(default_factory=CaseEvents, repr=False, compare=False)

    @staticmethod
    def _unique_id(store: dict[str, Any], wanted: str, fallback: str) -> str:
        base = _slug(wanted or fallback)
        candidate, n = base, 1
        while candidate in store:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _add(self, store: dict[str, T], item: T, fallback: str, signal: Signal) -> T:
        wanted = item.id or getattr(item, "name", "") or fallback
        item_id = wanted if item.id and item.id not in store else self._unique_id(store, wanted, fallback)
        stored = replace(item, id=item_id)
        store[item_id] = stored
        signal.emit(stored)
        return stored

    def add_volume(self, volume: Volume) -> Volume:
        """Store ``volume`` under a unique id (its own when free) and emit ``volume_added``."""
        return self._add(self.volumes, volume, "volume", self.events.volume_added)

    def remove_volume(self, volume_id: str) -> None:
        self._require(self.volumes, volume_id, "volume")
        del self.volumes[volume_id]
        self.source_headers.pop(volume_id, None)
        self.events.volume_removed.emit(volume_id)

    def add_label_map(self, label_map: LabelMap) -> LabelMap:
        return self._add(self.label_maps, label_map, "labels", self.events.label_map_added)

    def replace_label_map(self, label_map: LabelMap) -> LabelMap:
        """Put ``label_map`` under its existing id; derived meshes of it are dropped."""
        self._require(self.label_maps, label_map.id, "label map")
        self.label_maps[label_map.id] = label_map
        stale = [mid for mid, m in self.meshes.items() if m.provenance.get("label_map_id") == label_map.id]
        for mesh_id in stale:
            del self.meshes[mesh_id]
            self.events.mesh_removed.emit(mesh_id)
        self.events.label_map_changed.emit(label_map)
        return label_map

    def add_mesh(self, mesh: SurfaceMesh) -> SurfaceMesh:
        return self._add(self.meshes, mesh, "mesh", self.events.mesh_added)

    def remove_mesh(self, mesh_id: str) -> None:
        self._require(self.meshes, mesh_id, "mesh")
        del self.meshes[mesh_id]
        self.events.mesh_removed.emit(mesh_id)

    def add_tet_mesh(self, mesh: TetMesh) -> TetMesh:
        return self._add(self.tet_meshes, mesh, "tetmesh", self.events.tet_mesh_added)

    def add_registration(self, registration: Registration) -> Registration:
        return self._add(self.registrations, registration, "registration", self.events.registration_added)

    def add_record(self, record: Record, *, replace_same_name: bool = False) -> Record:
        """Store a result (simulation, camera, session, ...); with ``replace_same_name`` a record of the
        same kind and name is replaced (keeping its id) instead of stored beside it."""
        if replace_same_name:
            for old in list(self.records.values()):
                if old.kind == record.kind and old.name == record.name:
                    self.remove_record(old.id)
                    record = replace(record, id=old.id)
        return self._add(self.records, record, record.kind, self.events.record_added)

    def remove_record(self, record_id: str) -> None:
        self._require(self.records, record_id, "record")
        del self.records[record_id]
        self.events.record_removed.emit(record_id)

    def records_of(self, kind: str) -> list[Record]:
        """The records of one kind, in the order they were added."""
        return [r for r in self.records.values() if r.kind == kind]

    def record(self, kind: str, name: str) -> Record:
        """The record of ``kind`` called ``name`` (or with that id)."""
        for r in self.records.values():
            if r.kind == kind and name in (r.name, r.id):
                return r
        raise KeyError(f"no {kind} {name!r}; there are: {sorted(r.name for r in self.records_of(kind)) or 'none'}")

    def set_plan(self, plan: Plan) -> None:
        self.plan = plan
        self.events.plan_changed.emit(plan)

    def volume(self, volume_id: str | None = None) -> Volume:
        """The volume ``volume_id``, or the only/first one when ``None``."""
        if volume_id is None:
            if not self.volumes:
                raise KeyError(f"case {self.name!r} holds no volume")
            return next(iter(self.volumes.values()))
        return self._require(self.volumes, volume_id, "volume")

    @staticmethod
    def _require(store: dict[str, T], item_id: str, what: str) -> T:
        if item_id not in store:
            raise KeyError(f"no {what} {item_id!r}; there are: {sorted(store) or 'none'}")
        return store[item_id]
