"""Clauses of the hypervisor component (filled by its issue)."""
from . import register

register([])
