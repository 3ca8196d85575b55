"""Import a scan into a new case: DICOM (folder, zip, DICOMDIR) or a NIfTI/NRRD volume."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from workstation.dicom.deidentify import Deidentifier, header_to_json
from workstation.dicom.load import load_candidate
from workstation.dicom.scan import ScanResult, SeriesCandidate, scan_path
from workstation.io.volume_files import is_volume_file, read_volume
from workstation.model.case import Case
from workstation.model.volume import SeriesIdentity, Volume
from workstation.progress import ProgressCallback


@dataclass
class ImportResult:
    """The new case and what to tell the user.

    ``messages`` are for the terminal (they may name series descriptions); ``case.log`` holds
    only what is free of PHI.
    """

    case: Case
    scan: ScanResult | None = None
    chosen: SeriesCandidate | None = None
    messages: list[str] = field(default_factory=list)


def import_path(path: str | os.PathLike[str], *, series: str | None = None, keep_phi: bool = False,
                name: str = "case", progress: ProgressCallback | None = None) -> ImportResult:
    """Import ``path`` into a new :class:`Case`.

    Parameters
    ----------
    path : DICOM folder (searched recursively), zip, DICOMDIR, single DICOM file, or a
        NIfTI/NRRD/MetaImage volume.
    series : 1-based candidate number as ``twin scan`` prints it, or a Series Instance UID.
        ``None`` takes the largest series that forms a volume.
    keep_phi : keep identifying DICOM attributes (default: de-identify).
    """
    path = Path(path)
    if path.is_file() and is_volume_file(path):
        volume = read_volume(path)
        case = Case(name=name, deidentification={"deidentified": True, "method": "volume file: no DICOM header"})
        stored = case.add_volume(volume)
        msg = f"imported {path.name} as volume '{stored.id}' {_describe(stored)}"
        case.log.append(f"imported a {''.join(path.suffixes[-2:])} volume file as '{stored.id}'")
        return ImportResult(case=case, messages=[msg])

    scan = scan_path(path, progress=progress)
    chosen = scan.select(series) if series else scan.default()
    volumes = load_candidate(chosen, progress=progress)
    deid = Deidentifier(keep_phi=keep_phi)
    case = Case(name=name)
    messages = [f"scanned {scan.n_files} files: {len(scan.candidates)} series candidate(s), "
                f"{len(scan.usable())} forming a volume, {len(scan.rejected)} file(s) set aside"]
    how = "chosen with --series" if series else "the largest series that forms a volume"
    messages.append(f"importing series {chosen.number} ({chosen.modality}, {chosen.description!r}): {how}")
    context = f"series-{chosen.number}"
    for index, volume in enumerate(volumes):
        identity = SeriesIdentity(
            study_instance_uid=deid.uid(chosen.study_instance_uid, context="study"),
            series_instance_uid=deid.uid(chosen.series_instance_uid, context=context),
            frame_of_reference_uid=deid.uid(volume.series.frame_of_reference_uid, context=f"{context}:for"),
            series_number=chosen.series_number,
            series_description=chosen.description if keep_phi else "")
        stored = case.add_volume(replace(volume, series=identity))
        stack = chosen.stacks[index]
        datasets = {id(f.dataset): f for f in stack.frames}
        case.source_headers[stored.id] = [
            header_to_json(deid.header(f.dataset, series_context=context, instance_context=f"file:{f.path}"))
            for f in datasets.values()]
        messages.append(f"volume '{stored.id}': {_describe(stored)}")
        for warning in stored.provenance.get("warnings", []):
            messages.append(f"  warning: {warning}")
            case.log.append(f"volume '{stored.id}': {warning}")
        case.log.append(f"imported series number {chosen.series_number} ({chosen.modality}) as volume "
                        f"'{stored.id}' {_describe(stored)}")
    case.deidentification = deid.summary()
    if keep_phi:
        case.log.append("PHI kept on request (--keep-phi)")
    else:
        messages.append(f"de-identified: {len(deid.removed)} kinds of attribute removed, dates shifted, UIDs "
                        "re-mapped (source files untouched)")
    others = [c for c in scan.candidates if c is not chosen]
    for other in others:
        messages.append(f"  other series {other.number}: {other.modality} {other.description!r} "
                        f"{'(volume)' if other.usable else '(not a volume: ' + other.problem + ')'}")
    return ImportResult(case=case, scan=scan, chosen=chosen, messages=messages)


def _describe(volume: Volume) -> str:
    k, j, i = volume.shape
    sx, sy, sz = volume.spacing_mm
    return f"{volume.modality} {i}x{j}x{k} voxels, {sx:.3f}x{sy:.3f}x{sz:.3f} mm, LPS"
