"""The data model: every geometric object in patient LPS millimetres, saying so."""

from workstation.model.case import Case, CaseEvents
from workstation.model.labelmap import LabelMap, Segment
from workstation.model.mesh import SurfaceMesh, TetMesh
from workstation.model.plan import Implant, Landmark, Measurement, Plan, ResectionPlane, Trajectory
from workstation.model.record import RECORD_KINDS, Record
from workstation.model.registration import Registration
from workstation.model.volume import SeriesIdentity, Volume

__all__ = [
    "RECORD_KINDS",
    "Case",
    "CaseEvents",
    "Implant",
    "LabelMap",
    "Landmark",
    "Measurement",
    "Plan",
    "Record",
    "Registration",
    "ResectionPlane",
    "Segment",
    "SeriesIdentity",
    "SurfaceMesh",
    "TetMesh",
    "Trajectory",
    "Volume",
]
