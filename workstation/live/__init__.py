"""The live twin: tracked tool poses over OpenIGTLink, live deviations and alarms, recorded sessions, scores.

Tool pose convention (every module here): a 4x4 rigid matrix whose translation is the tool TIP and whose
third column (local +z) is the unit tool axis pointing in the insertion direction (from the handle towards
the tip, i.e. from the planned entry towards the planned target). Geometry is in millimetres; a pose says
its frame (``image_lps`` for the case's images, the registration's ``to_frame`` for tracker data).
"""
