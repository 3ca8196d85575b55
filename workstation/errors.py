"""Exceptions that reach a user as a one-line message and an exit code.

Exit codes of the ``twin`` command:

====  ==========================================================
0     success
1     internal error (a bug: please report it with ``--debug`` output)
2     usage error (unknown command or option)
3     bad input (file, series or parameter unusable; the message says why)
4     the output could not be written (nothing was left half-written)
5     a case bundle is damaged (checksum mismatch or missing file)
130   interrupted (Ctrl-C); nothing was left half-written
====  ==========================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_OUTPUT = 4
EXIT_DAMAGED = 5
EXIT_INTERRUPTED = 130


class TwinError(Exception):
    """Base of errors that are the user's to fix; ``str(err)`` is one line."""

    exit_code = EXIT_BAD_INPUT


class InputError(TwinError):
    """Unusable input: a file, a series or a parameter (the message names it)."""

    exit_code = EXIT_BAD_INPUT


class OutputError(TwinError):
    """An output could not be written; the previous state is intact."""

    exit_code = EXIT_OUTPUT


class DamagedBundleError(TwinError):
    """A case bundle fails its checksums or misses a file."""

    exit_code = EXIT_DAMAGED


class CancelledError(TwinError):
    """A long job was cancelled through its progress callback."""

    exit_code = EXIT_INTERRUPTED
