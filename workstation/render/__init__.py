"""Off-screen rendering of cases (pyvista/VTK, no Qt)."""
