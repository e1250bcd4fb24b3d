"""virtio mutants (filled by its issue)."""
MUTANTS: list = []
