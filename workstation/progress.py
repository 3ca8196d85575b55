"""Progress reporting and cancellation for long jobs.

A job takes ``progress: ProgressCallback | None``; it calls ``progress(done, total, message)``
and stops with :class:`~workstation.errors.CancelledError` when the callback returns ``False``.
The CLI passes a tqdm bar, the app a progress dialog with Cancel.
"""

from __future__ import annotations

from collections.abc import Callable

from workstation.errors import CancelledError

ProgressCallback = Callable[[int, int, str], "bool | None"]


def report(progress: ProgressCallback | None, done: int, total: int, message: str) -> None:
    """Forward to ``progress`` and raise :class:`CancelledError` when it asks to stop."""
    if progress is not None and progress(done, total, message) is False:
        raise CancelledError(f"cancelled during: {message}")
