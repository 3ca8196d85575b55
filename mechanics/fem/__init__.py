"""Hand-written finite elements on linear tetrahedra (numba element loops, scipy/CHOLMOD factorisations).

Why hand-written (and not scikit-fem/sfepy): interaction needs what general FEM packages do not offer:
assembly straight into a fixed CSR pattern in one numba pass (no COO->CSR per step), element stiffness
built on the fly from rotated gradients (no stored element matrices), and reuse of a rest-state
factorisation as the preconditioner of every co-rotational step. ``benchmarks/bench_fem.py`` compares it
with scikit-fem on the same mesh and loads.
"""
