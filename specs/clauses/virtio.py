"""Clauses of the virtio component (filled by its issue)."""
from . import register

register([])
