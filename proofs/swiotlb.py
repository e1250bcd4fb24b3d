"""Proof subjects of the swiotlb component (filled by its issue)."""
SUBJECTS: list = []
