"""Proof subjects of the hypervisor component (filled by its issue)."""
SUBJECTS: list = []
