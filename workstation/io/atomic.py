"""Atomic writes: write beside the target, then rename, so a crash leaves the old file intact."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from workstation.errors import InputError, OutputError


def output_file(path: str | os.PathLike[str], *, suffixes: tuple[str, ...] = (), option: str = "-o") -> Path:
    """``path`` as a Path once it may be written: one of ``suffixes`` (when given) and an existing folder.

    Raises :class:`InputError` naming ``option`` for a wrong suffix (a usage error) and
    :class:`OutputError` when the folder does not exist; nothing is written.
    """
    path = Path(path)
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{option} {path}: expected a file ending in {' or '.join(suffixes)}")
    if not path.parent.is_dir():
        raise OutputError(f"{path}: folder {path.parent} does not exist")
    return path


def _suffixes(path: Path) -> str:
    return "".join(path.suffixes[-2:]) if path.name.endswith((".nii.gz", ".json.gz")) else path.suffix


def fsync_path(path: Path) -> None:
    """Flush a file (or a directory entry) to disk; ignored where the OS does not allow it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _process_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# Read once: changing the umask to read it is not thread-safe, and a process keeps its umask.
_NEW_FILE_MODE = 0o666 & ~_process_umask()


@contextmanager
def atomic_path(target: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` (same suffix); renamed over ``target`` on success.

    On an exception the temporary file is removed and ``target`` is untouched. The file gets
    ``mode`` when given, else the mode of the file it replaces, else the usual mode of a new file
    (0666 less the umask), not the owner-only mode of a temporary file.
    """
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{target}: folder {parent} does not exist")
    if target.is_dir():
        raise OutputError(f"{target}: is a folder; give a file name")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + _suffixes(target), dir=parent)
    except OSError as exc:
        raise OutputError(f"{target}: cannot write in {parent} ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            if mode is None:
                mode = target.stat().st_mode & 0o777 if target.is_file() else _NEW_FILE_MODE
            os.chmod(tmp, mode)
        fsync_path(tmp)
        os.replace(tmp, target)
        fsync_path(parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``target`` atomically; ``mode`` as in :func:`atomic_path` (0o600 for a key)."""
    with atomic_path(target, mode=mode) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))
