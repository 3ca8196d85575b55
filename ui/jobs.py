"""Long work off the GUI thread: a worker thread, a progress dialog with Cancel, errors as one message.

The core functions take ``progress=callback``; the callback here forwards progress to the dialog
(through a queued signal) and returns ``False`` once Cancel was pressed, which makes the core
raise :class:`~workstation.errors.CancelledError`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, Qt, QThreadPool, Signal
from PySide6.QtWidgets import QMessageBox, QProgressDialog, QWidget

from workstation.errors import CancelledError, TwinError


def error_text(exc: BaseException) -> str:
    """One line for a message box: the user's to fix (TwinError) or a bug, never a traceback."""
    if isinstance(exc, TwinError):
        return " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return "not enough memory for this input"
    return f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())} (a bug: please report it)"


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, title, error_text(exc), QMessageBox.StandardButton.Ok, parent)
    box.setObjectName("error-box")
    box.open()


class _Signals(QObject):
    progress = Signal(int, int, str)
    finished = Signal(object)
    failed = Signal(object)


class _Runnable(QRunnable):
    def __init__(self, work: Callable[[Callable[[int, int, str], bool]], Any], signals: _Signals,
                 cancel: threading.Event) -> None:
        super().__init__()
        self.work, self.signals, self.cancel = work, signals, cancel
        self.setAutoDelete(True)

    def _progress(self, done: int, total: int, message: str) -> bool:
        self.signals.progress.emit(int(done), int(total), str(message))
        return not self.cancel.is_set()

    def run(self) -> None:
        try:
            result = self.work(self._progress)
        except BaseException as exc:
            if not isinstance(exc, TwinError):
                print(f"twin app: {type(exc).__name__}: {exc}", file=sys.stderr)
            self.signals.failed.emit(exc)
            return
        self.signals.finished.emit(result)


class Job(QObject):
    """One background job with its progress dialog; ``done`` / ``failed`` fire on the GUI thread."""

    done = Signal(object)
    failed = Signal(object)
    ended = Signal()

    def __init__(self, parent: QWidget, title: str, work: Callable[[Callable[[int, int, str], bool]], Any], *,
                 on_done: Callable[[Any], None] | None = None, show_dialog: bool = True) -> None:
        super().__init__(parent)
        self.title, self.cancel_event = title, threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None
        self.running = True
        self.dialog: QProgressDialog | None = None
        if show_dialog:
            self.dialog = QProgressDialog(title, "Cancel", 0, 0, parent)
            self.dialog.setObjectName("progress-dialog")
            self.dialog.setWindowTitle(title)
            self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
            self.dialog.setMinimumDuration(300)
            self.dialog.setAutoClose(False)
            self.dialog.setAutoReset(False)
            self.dialog.canceled.connect(self.cancel)
        self._signals = _Signals()
        self._signals.progress.connect(self._on_progress)
        self._signals.finished.connect(self._on_finished)
        self._signals.failed.connect(self._on_failed)
        self._on_done = on_done
        self._parent = parent
        QThreadPool.globalInstance().start(_Runnable(work, self._signals, self.cancel_event))

    def cancel(self) -> None:
        self.cancel_event.set()
        if self.dialog is not None:
            self.dialog.setLabelText(f"{self.title}: cancelling ...")

    def _on_progress(self, done: int, total: int, message: str) -> None:
        dialog = self.dialog  # setValue may process events, and the job may end meanwhile
        if dialog is not None and self.running and not self.cancel_event.is_set():
            dialog.setLabelText(f"{self.title}\n{message}")
            dialog.setMaximum(max(total, 0))
            dialog.setValue(min(done, total) if total > 0 else 0)

    def _close(self) -> None:
        self.running = False
        if self.dialog is not None:
            shown = self.dialog.isVisible()
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
            if shown:  # give the keyboard back to the window (its shortcuts need it active)
                self._parent.activateWindow()

    def _on_finished(self, result: Any) -> None:
        self.result = result
        self._close()
        try:
            if self._on_done is not None:
                self._on_done(result)
        except Exception as exc:
            self.error = exc
            show_error(self._parent, self.title, exc)
        else:
            self.done.emit(result)
        self.ended.emit()

    def _on_failed(self, exc: BaseException) -> None:
        self.error = exc
        self._close()
        if not isinstance(exc, CancelledError):
            show_error(self._parent, self.title, exc)
        self.failed.emit(exc)
        self.ended.emit()
