"""Plans leaving the workstation: signed JSON plans, OpenIGTLink, 3D Slicer markups and ROS YAML.

Every exporter says which frame its coordinates are in; the workstation's own frame is the
image's patient LPS frame in millimetres (``image_lps``).
"""
