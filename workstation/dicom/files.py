"""Finding DICOM files: folders (recursive), zip archives and DICOMDIR files."""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from workstation.errors import InputError

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_MAX_ZIP_BYTES = 64 * 1024**3


@dataclass
class SourceFiles:
    """Files to examine, with what was found unusable while listing them.

    ``display_root`` is how paths are shown (a zip's own name for its members). ``temporary``
    says the files are extracted copies deleted when :func:`dicom_source` exits, so whatever
    is read from them must be read then (no deferred reads of pixel data).
    """

    paths: list[Path]
    display_root: Path
    problems: list[tuple[str, str]] = field(default_factory=list)
    from_dicomdir: bool = False
    temporary: bool = False

    def display(self, path: Path, root: Path) -> str:
        try:
            return str(self.display_root / path.relative_to(root))
        except ValueError:
            return str(path)


def _dicomdir_files(dicomdir: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    import pydicom

    try:
        ds = pydicom.dcmread(dicomdir)
    except Exception as exc:
        raise InputError(f"{dicomdir}: not a readable DICOMDIR ({type(exc).__name__}: {exc})") from None
    base = dicomdir.parent
    paths: list[Path] = []
    problems: list[tuple[str, str]] = []
    for record in ds.get("DirectoryRecordSequence", []):
        ref = record.get("ReferencedFileID")
        if not ref:
            continue
        parts = [ref] if isinstance(ref, str) else list(ref)
        path = base.joinpath(*parts)
        # DICOMDIR file IDs are upper case; tolerate file systems that kept another case.
        if not path.is_file():
            matches = [p for p in base.rglob(parts[-1]) if p.is_file()] if parts else []
            path = matches[0] if len(matches) == 1 else path
        if path.is_file():
            paths.append(path)
        else:
            problems.append((str(base.joinpath(*parts)), "listed in the DICOMDIR but missing on disk"))
    return sorted(set(paths)), problems


def _walk(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / name for name in sorted(filenames) if not name.startswith("."))
    return found


def _safe_extract(archive: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            total = sum(info.file_size for info in zf.infolist())
            if total > _MAX_ZIP_BYTES:
                raise InputError(f"{archive}: archive expands to {total / 1e9:.1f} GB, more than allowed")
            root = target.resolve()
            for info in zf.infolist():
                dest = (target / info.filename).resolve()
                if not dest.is_relative_to(root):
                    raise InputError(f"{archive}: member {info.filename!r} points outside the archive")
            zf.extractall(target)
    except zipfile.BadZipFile as exc:
        raise InputError(f"{archive}: not a readable zip archive ({exc})") from None


@contextmanager
def dicom_source(path: str | os.PathLike[str]) -> Iterator[tuple[SourceFiles, Path]]:
    """List candidate files under ``path`` (folder, zip or DICOMDIR).

    Yields ``(files, root)``; a zip is extracted to a temporary folder that lives
    until the context exits. Raises :class:`InputError` when ``path`` is unusable.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_file() and zipfile.is_zipfile(path):
        tmp = Path(tempfile.mkdtemp(prefix="twin-zip-"))
        try:
            _safe_extract(path, tmp)
            files = _walk(tmp)
            yield SourceFiles(files, display_root=path, temporary=True), tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    if path.is_file() and path.name.upper() == "DICOMDIR":
        files, problems = _dicomdir_files(path)
        if problems or not files:
            # Damaged or vendor-nested DICOMDIR (e.g. Philips DIRFILE): the folder itself is the truth.
            note = (f"DICOMDIR lists {len(problems)} missing file(s) and {len(files)} present: scanned its "
                    "folder instead")
            files = [p for p in _walk(path.parent) if p.name.upper() != "DICOMDIR"]
            problems = [(str(path), note)]
        yield SourceFiles(files, display_root=path.parent, problems=problems, from_dicomdir=True), path.parent
        return
    if path.is_file():
        yield SourceFiles([path], display_root=path.parent), path.parent
        return
    files = [p for p in _walk(path) if p.name.upper() != "DICOMDIR"]
    yield SourceFiles(files, display_root=path), path
