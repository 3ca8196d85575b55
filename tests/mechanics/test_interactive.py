"""Interactive co-rotational backward-Euler stepping: accuracy against the exact step and the static state."""

from __future__ import annotations

import numpy as np
import pytest

import mechanics
from mechanics.fem.structured import box_tet_mesh
from workstation.errors import InputError


def _tissue() -> tuple[mechanics.TetMesh, np.ndarray, np.ndarray]:
    mesh = box_tet_mesh((6, 6, 4), (60.0, 60.0, 40.0))
    p = mesh.points_lps
    anchors = p[:, 2] < 1e-9
    handles = np.flatnonzero(np.isclose(p[:, 2], 40.0) & (np.hypot(p[:, 0] - 30, p[:, 1] - 30) < 12))
    return mesh, anchors, handles


def test_steps_stay_within_0_1_mm_of_the_exact_step_and_settle_on_the_static_solution() -> None:
    mesh, anchors, handles = _tissue()
    mat = mechanics.material("liver")
    sim = mechanics.InteractiveSimulation(mesh, mat, fixed_nodes=anchors, handle_nodes=handles, time_step_s=0.02)
    target = np.array([6.0, 0.0, -10.0])
    for k in range(1, 21):  # drag the handle 11.7 mm in 20 frames
        info = sim.step(target * k / 20, check_exact=True)
        assert info.exact_deviation_mm is not None and info.exact_deviation_mm < 0.1
        assert info.iterations <= sim.max_iterations
    for _ in range(30):  # hold still: the dynamics settle to the static co-rotational equilibrium
        info = sim.step(target)
    fixed = np.zeros((mesh.n_points, 3), dtype=bool)
    fixed[anchors] = True
    fixed[handles] = True
    prescribed = np.zeros((mesh.n_points, 3))
    prescribed[handles] = target
    static = mechanics.solve_static(mesh, mat, fixed_dofs=fixed, prescribed_displacement_mm=prescribed,
                                    model="corotational", load_steps=2, tolerance=1e-10, max_iterations=100)
    assert static.converged
    assert np.abs(sim.displacement_mm - static.displacement_mm).max() < 0.05
    expected_tool_force = -static.reaction_forces_n[handles].sum(axis=0)
    assert info.tool_force_n == pytest.approx(expected_tool_force, rel=0.02, abs=1e-6)
    assert info.tool_force_n[2] > 0  # the tissue pushes back against a downward drag
    saved = sim.result()
    assert saved.model == "corotational-dynamic" and len(saved.tool_force_n) == 50
    assert saved.tool_displacement_mm[-1] == pytest.approx(np.linalg.norm(target))
    assert np.allclose(saved.displacement_mm, sim.displacement_mm)
    assert saved.reaction_forces_n[handles].sum(axis=0) == pytest.approx(-info.tool_force_n, rel=0.02)
    record = saved.to_record("drag", "tet-1")
    assert record.arrays["tool_force_n"].shape == (50, 3)


def test_bad_interactive_set_up_is_refused() -> None:
    mesh, anchors, handles = _tissue()
    mat = mechanics.material("liver")
    with pytest.raises(InputError, match="handle_nodes"):
        mechanics.InteractiveSimulation(mesh, mat, fixed_nodes=anchors, handle_nodes=[])
    with pytest.raises(InputError, match="time_step_s"):
        mechanics.InteractiveSimulation(mesh, mat, fixed_nodes=anchors, handle_nodes=handles, time_step_s=0.0)
    with pytest.raises(InputError, match="handle_nodes: node indices"):
        mechanics.InteractiveSimulation(mesh, mat, fixed_nodes=anchors, handle_nodes=[mesh.n_points])
    sim = mechanics.InteractiveSimulation(mesh, mat, fixed_nodes=anchors, handle_nodes=handles)
    with pytest.raises(InputError, match="finite"):
        sim.step([np.nan, 0.0, 0.0])


def test_set_up_warm_up_leaves_the_rest_state_and_steps_restore_the_garbage_collector() -> None:
    import gc

    mesh, anchors, handles = _tissue()
    sim = mechanics.InteractiveSimulation(mesh, mechanics.material("liver"), fixed_nodes=anchors,
                                          handle_nodes=handles)
    assert np.all(sim.displacement_mm == 0.0)  # the warm-up step in set-up was undone
    assert sim.rot.shape == (mesh.n_tets, 3, 3) and np.allclose(sim.rot, np.eye(3))
    assert gc.isenabled()
    sim.step([0.0, 0.0, -1.0])
    assert gc.isenabled()
    gc.disable()
    try:
        sim.step([0.0, 0.0, -2.0])
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
    assert len(sim.result().tool_force_n) == 2
