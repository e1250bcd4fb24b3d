"""Invariants of the hypervisor component (filled by its issue)."""
