"""Isotropic elastic materials: validation, the literature library (``mechanics/data/materials.json``).

Nearly incompressible tissue: linear tetrahedra *lock* when the Poisson ratio approaches 0.5 (the
volumetric constraint cannot be met by a linear displacement field per element, so bending and shear
become far too stiff). The solvers here use displacement-only linear tetrahedra, which do not have a
non-locking (mixed u/p or F-bar) option, so :func:`check_locking` refuses ``nu > 0.49`` with a clear
message unless the caller accepts it explicitly (``allow_locking=True``), which is right only for
homogeneous deformations (e.g. a uniaxial-stress check) where a linear field is exact and nothing locks.
The library therefore uses nu = 0.45 as a compressible approximation of soft tissue.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from workstation.errors import InputError

LIBRARY_PATH = Path(__file__).with_name("data") / "materials.json"
LOCKING_POISSON_LIMIT = 0.49


@dataclass(frozen=True)
class Material:
    """A homogeneous isotropic elastic material.

    Parameters
    ----------
    youngs_modulus_pa : Young's modulus E in Pa (> 0).
    poisson_ratio : nu, -1 < nu < 0.5.
    density_kg_m3 : mass density in kg/m^3 (>= 0; used for gravity and dynamics).
    name : lower-case name (library name or the user's own).
    citation : where the values come from (library materials).
    """

    youngs_modulus_pa: float
    poisson_ratio: float
    density_kg_m3: float = 1000.0
    name: str = "user"
    citation: str = ""

    def __post_init__(self) -> None:
        e, nu, rho = float(self.youngs_modulus_pa), float(self.poisson_ratio), float(self.density_kg_m3)
        if not e > 0 or e != e or e == float("inf"):
            raise InputError(f"material {self.name!r}: youngs_modulus_pa must be > 0 (got {self.youngs_modulus_pa})")
        if not -1.0 < nu < 0.5:
            raise InputError(f"material {self.name!r}: poisson_ratio must satisfy -1 < nu < 0.5 "
                             f"(got {self.poisson_ratio})")
        if not rho >= 0 or rho == float("inf"):
            raise InputError(f"material {self.name!r}: density_kg_m3 must be >= 0 (got {self.density_kg_m3})")
        object.__setattr__(self, "youngs_modulus_pa", e)
        object.__setattr__(self, "poisson_ratio", nu)
        object.__setattr__(self, "density_kg_m3", rho)

    @property
    def shear_modulus_pa(self) -> float:
        return self.youngs_modulus_pa / (2.0 * (1.0 + self.poisson_ratio))

    @property
    def lame_lambda_pa(self) -> float:
        nu = self.poisson_ratio
        return self.youngs_modulus_pa * nu / ((1.0 + nu) * (1.0 - 2.0 * nu))

    @property
    def bulk_modulus_pa(self) -> float:
        return self.youngs_modulus_pa / (3.0 * (1.0 - 2.0 * self.poisson_ratio))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "youngs_modulus_pa": self.youngs_modulus_pa,
                "poisson_ratio": self.poisson_ratio, "density_kg_m3": self.density_kg_m3}


@lru_cache(maxsize=1)
def _library() -> dict[str, dict[str, Any]]:
    data = json.loads(LIBRARY_PATH.read_text(encoding="utf-8"))
    return dict(data["materials"])


def library_names() -> list[str]:
    """Names of the library materials (lower case)."""
    return sorted(_library())


def library_entry(name: str) -> dict[str, Any]:
    """The raw library entry (values, range, citation) of ``name``."""
    key = name.strip().lower()
    if key not in _library():
        raise InputError(f"material {name!r}: unknown; library materials are {', '.join(library_names())}")
    return dict(_library()[key])


def material(name: str, **overrides: float) -> Material:
    """A library material by lower-case name (``"liver"``), optionally with values overridden.

    ``material("liver", youngs_modulus_pa=3000.0)`` keeps density and Poisson ratio from the library.
    """
    entry = library_entry(name)
    values = {k: entry[k] for k in ("youngs_modulus_pa", "poisson_ratio", "density_kg_m3")}
    unknown = set(overrides) - set(values)
    if unknown:
        raise InputError(f"material {name!r}: cannot override {', '.join(sorted(unknown))}")
    values.update({k: float(v) for k, v in overrides.items()})
    return Material(**values, name=name.strip().lower(), citation=entry.get("citation", ""))


MaterialSpec = Material | Mapping[int, Material]


def check_locking(materials: MaterialSpec, *, allow_locking: bool) -> None:
    """Refuse nearly incompressible materials on linear tetrahedra (they lock) unless accepted."""
    items = materials.values() if isinstance(materials, Mapping) else [materials]
    for mat in items:
        if mat.poisson_ratio > LOCKING_POISSON_LIMIT and not allow_locking:
            raise InputError(
                f"material {mat.name!r}: poisson_ratio {mat.poisson_ratio} > {LOCKING_POISSON_LIMIT}: linear "
                "tetrahedra lock (far too stiff) for nearly incompressible material; use nu <= 0.49, or pass "
                "allow_locking=True only for homogeneous deformation checks")
