"""What every ``twin`` subcommand shares: quiet output, a progress bar, LPS point parsing, output checks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from workstation.cli.progress_bar import ProgressBar
from workstation.errors import InputError, OutputError


def say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text, flush=True)


def progress_bar(args: argparse.Namespace) -> ProgressBar:
    return ProgressBar(enabled=not args.quiet and sys.stderr.isatty())


def check_new_output(path: Path) -> None:
    if path.exists() and not (path.is_dir() and (path / "manifest.json").is_file()) and not (
            path.is_dir() and not any(path.iterdir())):
        raise OutputError(f"{path}: exists and is not a case bundle; choose another -o")
    if not path.parent.exists():
        raise OutputError(f"{path}: folder {path.parent} does not exist")


def parse_point(text: str, option: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 3 or not all(np.isfinite(values)):
        raise InputError(f"{option} {text!r}: expected x,y,z in LPS mm")
    return values
