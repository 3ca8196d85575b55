"""``twin app``: the desktop workstation (PySide6). Qt is imported only when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from workstation.cli.common import say
from workstation.errors import InputError, OutputError


def cmd_app(args: argparse.Namespace) -> int:
    if args.path is not None and args.sample:
        raise InputError("twin app: give a case/DICOM path or --sample, not both")
    if args.path is not None and not Path(args.path).exists():
        raise InputError(f"{args.path}: no such file or folder")
    if args.screenshot is not None and not Path(args.screenshot).resolve().parent.is_dir():
        raise OutputError(f"{args.screenshot}: folder {Path(args.screenshot).resolve().parent} does not exist")
    try:
        from ui.app import run
    except ImportError as exc:
        raise InputError(f"twin app needs PySide6 and pyvistaqt (pip install 'surgical-twin[app]'): {exc}") from None
    return run(args.path, sample=args.sample, screenshot=args.screenshot, say=lambda text: say(args, text))


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("app", parents=[common], help="start the desktop workstation",
                       description="Start the desktop workstation (PySide6) on a case bundle, a DICOM folder/zip/"
                                   "DICOMDIR or a NIfTI/NRRD volume, or on the bundled sample CT.")
    p.add_argument("path", nargs="?", help="case bundle, DICOM folder/zip/DICOMDIR, or volume file to open")
    p.add_argument("--sample", action="store_true", help="open the bundled sample CT (ct-abdomen-20)")
    p.add_argument("--screenshot", metavar="PNG", help="save the window once the case is shown, print the start-up "
                   "time, and quit (for documentation and checks)")
    p.set_defaults(func=cmd_app)
