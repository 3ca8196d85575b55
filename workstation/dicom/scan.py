"""Examine DICOM files and list the candidate series, with why files were split off or rejected."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workstation.dicom.files import MEDIA_STORAGE_DIRECTORY, dicom_source
from workstation.dicom.frames import NATIVE_TRANSFER_SYNTAXES, Frame, FrameError, frames_of, read_header
from workstation.dicom.stack import StackGeometry, analyse_stack, split_volumes
from workstation.errors import InputError
from workstation.geometry import plane_name
from workstation.progress import ProgressCallback, report

# Objects with pixel data that are not images to load as volumes, and what to do with them instead.
NOT_VOLUME_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.66.4": "a DICOM SEG label map, not an image: import it as a segmentation",
    "1.2.840.10008.5.1.4.1.1.66.7": "a label map, not an image: import it as a segmentation",
    "1.2.840.10008.5.1.4.1.1.104.1": "an encapsulated PDF",
}

ORIENTATION_TOLERANCE = 1e-3  # direction cosines that differ less than this are the same orientation


@dataclass
class SeriesCandidate:
    """A group of parallel planes of one series that may form one or more volumes."""

    number: int
    frames: list[Frame]
    series_instance_uid: str
    study_instance_uid: str
    modality: str
    series_number: int | None
    description: str
    stacks: list[StackGeometry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problem: str = ""

    @property
    def usable(self) -> bool:
        return not self.problem and bool(self.stacks)

    @property
    def n_files(self) -> int:
        return len({f.path for f in self.frames})

    @property
    def rows(self) -> int:
        return self.frames[0].rows

    @property
    def columns(self) -> int:
        return self.frames[0].columns

    @property
    def orientation(self) -> str:
        f = self.frames[0]
        return plane_name(f.normal) if f.row_dir is not None else "unknown"

    @property
    def n_voxels(self) -> int:
        return sum(s.n_output_slices * self.rows * self.columns for s in self.stacks)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no PHI beyond the description, which ``twin scan`` shows)."""
        stack = self.stacks[0] if self.stacks else None
        return {
            "number": self.number,
            "series_instance_uid": self.series_instance_uid,
            "modality": self.modality,
            "series_number": self.series_number,
            "description": self.description,
            "files": self.n_files,
            "frames": len(self.frames),
            "orientation": self.orientation,
            "size": [self.columns, self.rows, stack.n_output_slices if stack else len(self.frames)],
            "pixel_spacing_mm": list(self.frames[0].pixel_spacing_mm or ()),
            "slice_spacing_mm": stack.slice_spacing_mm if stack else None,
            "volumes": len(self.stacks),
            "usable": self.usable,
            "problem": self.problem,
            "notes": list(self.notes),
        }

    def summary(self) -> str:
        """One line for ``twin scan``."""
        stack = self.stacks[0] if self.stacks else None
        size = f"{self.columns}x{self.rows}x{stack.n_output_slices if stack else len(self.frames)}"
        ps = self.frames[0].pixel_spacing_mm
        spacing = f"{ps[1]:.3g}x{ps[0]:.3g}x{stack.slice_spacing_mm:.3g} mm" if (ps and stack) else "-"
        uid = self.series_instance_uid or "(no UID)"
        text = (f"{self.number:>3}  {self.modality or '??':<3} {self.orientation:<8} {size:<13} {spacing:<22} "
                f"{self.n_files:>4} files  #{self.series_number if self.series_number is not None else '-'} "
                f"{self.description!r}  {uid}")
        if len(self.stacks) > 1:
            text += f"  [{len(self.stacks)} volumes]"
        if self.problem:
            text += f"\n       not a volume: {self.problem}"
        for note in self.notes:
            text += f"\n       note: {note}"
        return text


@dataclass
class ScanResult:
    """What a folder, zip or DICOMDIR holds."""

    source: str
    candidates: list[SeriesCandidate]
    rejected: list[tuple[str, str]]
    n_files: int

    def usable(self) -> list[SeriesCandidate]:
        return [c for c in self.candidates if c.usable]

    def default(self) -> SeriesCandidate:
        """The largest candidate that forms a volume; :class:`InputError` saying why when none."""
        usable = self.usable()
        if not usable:
            raise InputError(f"{self.source}: {self.why_nothing_usable()}")
        return max(usable, key=lambda c: (c.n_voxels, -c.number))

    def select(self, spec: str) -> SeriesCandidate:
        """Candidate by the 1-based number ``twin scan`` prints, or by Series Instance UID."""
        spec = spec.strip()
        if spec.isdigit():
            number = int(spec)
            for c in self.candidates:
                if c.number == number:
                    if not c.usable:
                        raise InputError(f"--series {number}: not a volume ({c.problem or 'no stack'})")
                    return c
            raise InputError(f"--series {number}: no such series; {self.source} has 1..{len(self.candidates)}")
        matches = [c for c in self.candidates if c.series_instance_uid == spec]
        if not matches:
            raise InputError(f"--series {spec}: no series with this UID in {self.source}")
        usable = [c for c in matches if c.usable]
        if len(matches) > 1:
            numbers = ", ".join(str(c.number) for c in matches)
            raise InputError(f"--series {spec}: this series mixes {len(matches)} orientations or geometries "
                             f"(candidates {numbers}); choose one by number")
        if not usable:
            raise InputError(f"--series {spec}: not a volume ({matches[0].problem})")
        return usable[0]

    def why_nothing_usable(self) -> str:
        if self.n_files == 0:
            return "no files found"
        reasons = Counter(reason for _, reason in self.rejected)
        reasons.update(f"series {c.number}: {c.problem}" for c in self.candidates if c.problem)
        top = "; ".join(f"{reason} ({count} file{'s' if count > 1 else ''})" if not reason.startswith("series")
                        else reason for reason, count in reasons.most_common(3))
        return f"no series forms a volume among {self.n_files} files: {top}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "files": self.n_files,
                "series": [c.to_dict() for c in self.candidates],
                "rejected": [{"file": f, "reason": r} for f, r in self.rejected]}


def _truncation(ds: Any, path: Path) -> str | None:
    """Reason when the file ends before its (deferred) native pixel data does."""
    # keep_deferred: look at the element's header only; reading the value would load every file's pixels.
    elem = ds.get_item("PixelData", keep_deferred=True)
    if elem is None:
        return None
    length = getattr(elem, "length", None)
    tell = getattr(elem, "value_tell", None)
    if length is None or tell is None or length == 0xFFFFFFFF:
        return None
    size = os.path.getsize(path)
    if tell + length > size:
        return f"truncated file: pixel data needs {length} bytes, {max(0, size - tell)} present"
    syntax = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "1.2.840.10008.1.2"))
    if syntax in NATIVE_TRANSFER_SYNTAXES:
        expected = (int(ds.Rows) * int(ds.Columns) * int(ds.get("NumberOfFrames", 1) or 1)
                    * int(ds.get("SamplesPerPixel", 1) or 1) * int(ds.BitsAllocated) + 7) // 8
        if length < expected:
            return f"pixel data holds {length} bytes, {expected} expected"
    return None


def _same_orientation(a: Frame, b: Frame) -> bool:
    return bool(np.max(np.abs(a.row_dir - b.row_dir)) < ORIENTATION_TOLERANCE  # type: ignore[operator]
                and np.max(np.abs(a.col_dir - b.col_dir)) < ORIENTATION_TOLERANCE  # type: ignore[operator]
                and np.allclose(a.pixel_spacing_mm, b.pixel_spacing_mm, rtol=1e-3))  # type: ignore[arg-type]


def _group(frames: list[Frame]) -> list[tuple[tuple[Any, ...], list[Frame], int]]:
    """Group by series identity, then by geometry; returns (key, frames, n_geometry_groups_of_series)."""
    by_series: dict[tuple[Any, ...], list[Frame]] = {}
    for f in frames:
        ds = f.dataset
        key = (str(ds.get("StudyInstanceUID", "") or ""), str(ds.get("SeriesInstanceUID", "") or ""),
               str(ds.get("Modality", "") or ""), str(ds.get("SeriesNumber", "") or ""))
        by_series.setdefault(key, []).append(f)
    groups = []
    for key, members in by_series.items():
        # Pixel grid and orientation together, so the count covers every geometry the series mixes.
        clusters: list[list[Frame]] = []
        for f in members:
            for cluster in clusters:
                if (cluster[0].rows, cluster[0].columns) == (f.rows, f.columns) and _same_orientation(cluster[0], f):
                    cluster.append(f)
                    break
            else:
                clusters.append([f])
        groups.extend((key, cluster, len(clusters)) for cluster in clusters)
    return groups


def scan_path(path: str | os.PathLike[str], *, progress: ProgressCallback | None = None) -> ScanResult:
    """List the candidate series under ``path`` (folder, zip, DICOMDIR or one file).

    Files are opened read-only and never modified. Raises :class:`InputError` when ``path``
    does not exist or is an unreadable archive; otherwise unusable files are listed in
    ``rejected`` with the reason.
    """
    with dicom_source(path) as (source, root):
        return _scan_files(source.paths, root, source.display_root, str(path), source.problems, progress,
                           defer_size=None if source.temporary else 4096)


def _scan_files(paths: list[Path], root: Path, display_root: Path, label: str,
                problems: list[tuple[str, str]], progress: ProgressCallback | None, *,
                defer_size: int | None = 4096) -> ScanResult:
    rejected = list(problems)
    frames: list[Frame] = []
    no_geometry: list[Frame] = []
    seen_instances: dict[str, str] = {}
    for n, p in enumerate(paths):
        report(progress, n, len(paths), "reading DICOM headers")
        try:
            shown = str(display_root / p.relative_to(root))
        except ValueError:
            shown = str(p)
        try:
            ds = read_header(p, defer_size=defer_size)
            if str(ds.get("SOPClassUID", "")) == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds:
                continue
            trunc = _truncation(ds, p)
            if trunc:
                raise FrameError(trunc)
            got = frames_of(ds, p, shown)
            # The same instance twice (a copied file): same SOP Instance UID and the same size.
            instance = f"{ds.get('SOPInstanceUID', '') or ''}:{p.stat().st_size}"
            if not instance.startswith(":") and instance in seen_instances:
                raise FrameError(f"a copy of {seen_instances[instance]} (same SOP Instance UID): ignored")
            seen_instances.setdefault(instance, shown)
        except FrameError as exc:
            rejected.append((shown, str(exc)))
            continue
        for f in got:
            (frames if f.has_geometry else no_geometry).append(f)
    report(progress, len(paths), len(paths), "reading DICOM headers")
    for f in no_geometry:
        kind = " ".join(str(v) for v in (f.dataset.get("ImageType") or [])) or "image"
        rejected.append((f.display, f"no patient geometry (ImagePositionPatient/Orientation): {kind}, not part of "
                                    "a volume"))
    candidates = []
    groups = _group(frames)
    groups.sort(key=lambda g: (g[0][0], _series_number_key(g[0][3]), g[0][1], -len(g[1])))
    for number, (key, members, n_geometries) in enumerate(groups, start=1):
        ds = members[0].dataset
        candidate = SeriesCandidate(
            number=number, frames=members, study_instance_uid=key[0], series_instance_uid=key[1],
            modality=key[2], series_number=int(float(key[3])) if key[3] else None,
            description=str(ds.get("SeriesDescription", "") or ""))
        if n_geometries > 1:
            candidate.notes.append(f"split off by geometry: its series holds {n_geometries} different "
                                   "orientations or pixel grids")
        _analyse(candidate)
        candidates.append(candidate)
    return ScanResult(source=label, candidates=candidates, rejected=rejected, n_files=len(paths))


def _series_number_key(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")


def _analyse(candidate: SeriesCandidate) -> None:
    sop_class = str(candidate.frames[0].dataset.get("SOPClassUID", ""))
    if sop_class in NOT_VOLUME_SOP_CLASSES:
        candidate.problem = NOT_VOLUME_SOP_CLASSES[sop_class]
        return
    try:
        volumes, note = split_volumes(candidate.frames)
        if note:
            candidate.notes.append(note)
        stacks = [analyse_stack(v) for v in volumes]
    except FrameError as exc:
        candidate.problem = str(exc)
        return
    candidate.stacks = stacks
    # Every volume's findings, not only the first's: a gap may be in one time point only.
    volumes_of: dict[str, list[int]] = {}
    for index, stack in enumerate(stacks, start=1):
        for text in stack.notes():
            volumes_of.setdefault(text, []).append(index)
    for text, which in volumes_of.items():
        if len(which) == len(stacks):
            candidate.notes.append(text)
        else:
            candidate.notes.append(f"volume{'s' if len(which) > 1 else ''} {', '.join(map(str, which))}: {text}")
