"""Surgical-planning digital-twin workstation: the core (no Qt).

Importing :mod:`workstation` or :mod:`workstation.model` pulls in no CLI, no
rendering and no Qt; the upper modules (``cli``, ``dicom``, ``bundle``, ...) are
imported explicitly by whoever needs them.
"""

__version__ = "0.1.0"
