"""Invariants of the swiotlb component (filled by its issue)."""
