"""Surface -> tetrahedra -> materials -> FEM solvers -> results (no Qt). Built in the mechanics issue."""
