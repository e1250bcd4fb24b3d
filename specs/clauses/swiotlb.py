"""Clauses of the swiotlb component (filled by its issue)."""
from . import register

register([])
