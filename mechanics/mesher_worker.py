"""TetGen and fTetWild run in a child process.

TetGen corrupts memory (and aborts its process) on some invalid inputs, e.g. surfaces that
intersect each other, so the caller must survive that; both meshers write files into their working
folder (TetGen ``_skipped.node``, fTetWild ``__tracked_surface.stl``), so they get a scratch one.

:func:`tetrahedralize_isolated` runs this file as a script (not ``-m``, which would import the whole
``mechanics`` package and its solvers, ~1.5 s) with the PLC on stdin
(an ``.npz``) and reads the mesh from stdout; a crash becomes an :class:`~workstation.errors.InputError`.
A plain child interpreter (not ``multiprocessing``) so that scripts calling the public API need no
``if __name__ == "__main__"`` guard and the app's threads are never forked.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from workstation.errors import InputError

_REFUSED_EXIT = 3


def run(points: NDArray[np.float64], triangles: NDArray[np.int32],
        options: dict[str, Any]) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """The mesher ``options["mesher"]`` (``"tetgen"``, the default, or ``"ftetwild"``) on a PLC in this
    process, with the rest of ``options`` as its keywords: (nodes (N, 3), tets (M, 4), region attributes
    (M, k); fTetWild gives none)."""
    import warnings

    options = dict(options)
    if options.pop("mesher", "tetgen") == "ftetwild":
        import pytetwild

        nodes, elems = pytetwild.tetrahedralize(np.ascontiguousarray(points, dtype=np.float64),
                                                np.ascontiguousarray(triangles, dtype=np.int32), **options)
        return (np.asarray(nodes, dtype=np.float64), np.asarray(elems, dtype=np.int64),
                np.zeros((len(elems), 0), dtype=np.float64))

    import tetgen

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gen = tetgen.TetGen(np.ascontiguousarray(points, dtype=np.float64),
                            np.ascontiguousarray(triangles, dtype=np.int32))
        nodes, elems, attributes, _ = gen.tetrahedralize(**options)
    return (np.asarray(nodes, dtype=np.float64), np.asarray(elems, dtype=np.int64),
            np.asarray(attributes, dtype=np.float64).reshape(len(elems), -1))


def tetrahedralize_isolated(points: NDArray[np.float64], triangles: NDArray[np.int32], options: dict[str, Any], *,
                            what: str) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.float64]]:
    """:func:`run` in a child interpreter.

    Raises
    ------
    RuntimeError
        The mesher refused the input (its own message).
    InputError
        The mesher crashed (``what`` names the input).
    """
    mesher = "fTetWild" if options.get("mesher") == "ftetwild" else "TetGen"
    request = io.BytesIO()
    np.savez(request, points=np.asarray(points, dtype=np.float64), triangles=np.asarray(triangles, dtype=np.int32),
             options=np.array(json.dumps(options)))
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p),
           "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS", "1")}
    with tempfile.TemporaryDirectory(prefix="mesher-") as scratch:
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve())], input=request.getvalue(),
                              capture_output=True, env=env, cwd=scratch, check=False)
    if proc.returncode == _REFUSED_EXIT:
        raise RuntimeError(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1])
    if proc.returncode != 0:
        raise InputError(f"{what}: {mesher} crashed on it (exit {proc.returncode}; the surfaces probably intersect "
                         "themselves or each other); repair the surface or mesh the label map (voxel tetrahedra, "
                         "--from-labels)")
    with np.load(io.BytesIO(proc.stdout)) as data:
        return data["nodes"], data["elems"], data["attributes"]


def _main() -> int:
    with np.load(io.BytesIO(sys.stdin.buffer.read())) as data:
        points, triangles, options = data["points"], data["triangles"], json.loads(str(data["options"]))
    try:
        nodes, elems, attributes = run(points, triangles, options)
    except (RuntimeError, ValueError) as exc:
        print(" ".join(str(exc).split()), file=sys.stderr)
        return _REFUSED_EXIT
    out = io.BytesIO()
    np.savez(out, nodes=nodes, elems=elems, attributes=attributes)
    sys.stdout.buffer.write(out.getvalue())
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
