"""Rehearsal reports of a case: HTML (jinja2) with embedded pictures and matplotlib plots."""
