"""The PySide6 desktop app: the only package that imports Qt. Built in the desktop-app issue."""
