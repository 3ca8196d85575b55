"""Case bundles: versioned, checksummed, atomically saved folders or zips."""

from workstation.bundle.store import SCHEMA_VERSION, load_case, read_manifest, save_case, verify_bundle

__all__ = ["SCHEMA_VERSION", "load_case", "read_manifest", "save_case", "verify_bundle"]
