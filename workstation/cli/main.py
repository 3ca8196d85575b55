"""The ``twin`` command: the same core functions the desktop app calls, without a window.

Exit codes: 0 ok, 1 internal error (a bug), 2 usage, 3 bad input, 4 output not writable,
5 damaged case bundle, 130 interrupted. See :mod:`workstation.errors`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import traceback
from collections.abc import Sequence

from workstation import __version__
from workstation.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, TwinError

EPILOG = """exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 output not writable,
5 damaged case bundle, 130 interrupted. Geometry is always patient LPS millimetres."""


# Each module holds one area's subcommands and a ``register(sub, common)`` that adds them.
COMMAND_MODULES = (
    "data_commands",
    "segmentation_commands",
    "edit_commands",
    "mechanics_commands",
    "planning_commands",
    "render_commands",
    "app_commands",
    "export_commands",
    "live_commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="twin", description="Surgical-planning digital twin (headless).",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"twin {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="print only errors (and requested JSON)")
    common.add_argument("--debug", action="store_true", help="show a traceback on internal errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    for module in COMMAND_MODULES:
        importlib.import_module(f"workstation.cli.{module}").register(sub, common)
    return parser


# A value that starts with a minus sign and a digit: a negative number or a coordinate list ("-12,-8,0").
_NEGATIVE_VALUE = re.compile(r"^-\.?\d")


def _options_with_values(parser: argparse.ArgumentParser) -> set[str]:
    """Every long option of every subcommand that takes a value (not a ``store_true`` flag)."""
    options: set[str] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in action.choices.values():
                options |= _options_with_values(subparser)
        elif action.nargs != 0:
            options.update(s for s in action.option_strings if s.startswith("--"))
    return options


def _join_negative_coordinates(argv: Sequence[str], value_options: set[str]) -> list[str]:
    """``--point -12,-8,0`` -> ``--point=-12,-8,0`` (argparse would take the value for an option).

    Only long options that take a value are joined (``value_options``); flags never take one.
    """
    out: list[str] = []
    tokens = list(argv)
    n = 0
    while n < len(tokens):
        token = tokens[n]
        following = tokens[n + 1] if n + 1 < len(tokens) else ""
        if token in value_options and _NEGATIVE_VALUE.match(following):
            out.append(f"{token}={following}")
            n += 2
            continue
        out.append(token)
        n += 1
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``twin``; returns the exit code. Errors are one line on stderr, never a traceback."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = build_parser()
    args = parser.parse_args(_join_negative_coordinates(sys.argv[1:] if argv is None else argv,
                                                             _options_with_values(parser)))
    try:
        return int(args.func(args))
    except TwinError as exc:
        print(f"twin {args.command}: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"twin {args.command}: interrupted; nothing was left half-written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print(f"twin {args.command}: error: not enough memory for this input", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as exc:
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"twin {args.command}: internal error: {type(exc).__name__}: {' '.join(str(exc).split())} "
              "(a bug: rerun with --debug and report it)", file=sys.stderr)
        return EXIT_INTERNAL

if __name__ == "__main__":
    sys.exit(main())
