"""Proof subjects of the doorbell component (filled by its issue)."""
SUBJECTS: list = []
