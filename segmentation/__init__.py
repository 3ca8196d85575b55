"""Volume -> label map -> surface mesh, as pure functions (no Qt). Built in the segmentation issue."""
