"""Materials: library as data with citations, validation, overrides, locking refusal."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mechanics
from mechanics.materials import LIBRARY_PATH, check_locking
from workstation.errors import InputError

EXPECTED = {"liver", "kidney", "spleen", "brain_grey_matter", "brain_white_matter", "muscle", "fat", "skin",
            "cartilage", "cortical_bone", "cancellous_bone", "vessel_wall"}


def test_library_has_every_tissue_with_values_and_citation() -> None:
    assert set(mechanics.library_names()) == EXPECTED
    data = json.loads(LIBRARY_PATH.read_text(encoding="utf-8"))
    for name, entry in data["materials"].items():
        assert name == name.lower()
        assert entry["range_pa"][0] <= entry["youngs_modulus_pa"] <= entry["range_pa"][1], name
        assert len(entry["citation"]) > 30, name
        mat = mechanics.material(name)
        assert mat.name == name and mat.citation == entry["citation"]
    assert mechanics.material("cortical_bone").youngs_modulus_pa > 1e4 * mechanics.material("liver").youngs_modulus_pa


def test_material_lookup_is_case_insensitive_and_overridable() -> None:
    liver = mechanics.material("Liver", youngs_modulus_pa=3000.0)
    assert liver.youngs_modulus_pa == 3000.0
    assert liver.poisson_ratio == mechanics.material("liver").poisson_ratio
    with pytest.raises(InputError, match="unknown"):
        mechanics.material("unobtainium")
    with pytest.raises(InputError, match="cannot override"):
        mechanics.material("liver", colour=1.0)


def test_derived_moduli() -> None:
    mat = mechanics.Material(youngs_modulus_pa=1000.0, poisson_ratio=0.25, density_kg_m3=1000.0, name="mine")
    assert mat.shear_modulus_pa == pytest.approx(400.0)
    assert mat.lame_lambda_pa == pytest.approx(400.0)
    assert mat.bulk_modulus_pa == pytest.approx(1000.0 / 1.5)


@pytest.mark.parametrize("kwargs, word", [
    ({"youngs_modulus_pa": 0.0, "poisson_ratio": 0.3}, "youngs_modulus_pa"),
    ({"youngs_modulus_pa": -5.0, "poisson_ratio": 0.3}, "youngs_modulus_pa"),
    ({"youngs_modulus_pa": float("nan"), "poisson_ratio": 0.3}, "youngs_modulus_pa"),
    ({"youngs_modulus_pa": 1.0, "poisson_ratio": 0.5}, "poisson_ratio"),
    ({"youngs_modulus_pa": 1.0, "poisson_ratio": -1.0}, "poisson_ratio"),
    ({"youngs_modulus_pa": 1.0, "poisson_ratio": 0.3, "density_kg_m3": -1.0}, "density_kg_m3"),
])
def test_invalid_materials_are_refused(kwargs: dict, word: str) -> None:
    with pytest.raises(InputError, match=word):
        mechanics.Material(**kwargs)


def test_nearly_incompressible_is_refused_on_linear_tets_unless_accepted() -> None:
    soft = mechanics.Material(youngs_modulus_pa=5000.0, poisson_ratio=0.499)
    with pytest.raises(InputError, match="lock"):
        check_locking(soft, allow_locking=False)
    check_locking(soft, allow_locking=True)
    mesh = mechanics.TetMesh(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]]), np.array([[0, 1, 2, 3]]))
    with pytest.raises(InputError, match=r"poisson_ratio 0\.499"):
        mechanics.solve_static(mesh, soft, fixed_dofs=np.ones((4, 3), dtype=bool))
