"""Planning on a case: trajectory safety (distances to critical structures), resection analysis,
trajectory proposals and robot reachability. All geometry in patient LPS millimetres."""
