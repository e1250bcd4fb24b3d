"""Rules of the doorbell component (filled by its issue)."""
