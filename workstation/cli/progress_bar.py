"""A tqdm progress bar behind the :data:`~workstation.progress.ProgressCallback` protocol."""

from __future__ import annotations

import sys
from typing import Any


class ProgressBar:
    """One tqdm bar per stage message, on stderr; silent when disabled."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._message = ""

    def __call__(self, done: int, total: int, message: str) -> bool:
        if not self.enabled:
            return True
        from tqdm import tqdm

        if message != self._message or self._bar is None:
            self.close()
            self._bar = tqdm(total=total, desc=message, leave=False, file=sys.stderr, unit="step",
                             dynamic_ncols=True)
            self._message = message
        self._bar.update(max(0, done - self._bar.n))
        return True

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
            self._message = ""
