"""Surface ICP recovers a known pose from a noisy cloud with outliers."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from workstation.errors import InputError
from workstation.model import SurfaceMesh
from workstation.registration.icp import _rotation, icp_to_surface


def bumpy_ellipsoid() -> SurfaceMesh:
    s = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    v = s.vertices * [40, 25, 15]
    v[:, 0] += 8 * np.exp(-((v[:, 1] - 10) ** 2 + (v[:, 2] - 5) ** 2) / 50)  # a bump breaks the symmetry
    return SurfaceMesh(v, s.faces, name="bone")


def test_icp_recovers_a_known_pose() -> None:
    mesh = bumpy_ellipsoid()
    rng = np.random.default_rng(1)
    on_surface = trimesh.sample.sample_surface(mesh.to_trimesh(), 500, seed=1)[0]
    r_true, t_true = _rotation(0.1, -0.15, 0.2), np.array([5.0, -3.0, 4.0])
    cloud = (on_surface - t_true) @ r_true + rng.normal(0, 0.2, on_surface.shape)  # so cloud -> mesh is (R, t)
    cloud = np.vstack([cloud, rng.uniform(-60, 60, (25, 3))])  # 5% stray points
    result = icp_to_surface(cloud, mesh)
    assert result.converged
    np.testing.assert_allclose(result.matrix[:3, :3], r_true, atol=2e-3)
    np.testing.assert_allclose(result.matrix[:3, 3], t_true, atol=0.1)
    assert result.rms_mm < 0.3  # ~ the 0.2 mm per-axis noise along the normal
    assert 0.85 < result.inlier_fraction < 1.0


def test_icp_refuses_degenerate_clouds() -> None:
    mesh = bumpy_ellipsoid()
    with pytest.raises(InputError, match="at least 6"):
        icp_to_surface(np.zeros((3, 3)), mesh)
    with pytest.raises(InputError, match="collinear"):
        icp_to_surface(np.outer(np.arange(10.0), [1, 2, 3]), mesh)
    with pytest.raises(InputError, match="finite"):
        icp_to_surface(np.full((10, 3), np.nan), mesh)
