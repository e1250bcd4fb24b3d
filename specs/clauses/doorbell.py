"""Clauses of the doorbell component (filled by its issue)."""
from . import register

register([])
