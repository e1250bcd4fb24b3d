"""Invariants of the doorbell (filled by its issue)."""
