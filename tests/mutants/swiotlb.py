"""swiotlb mutants (filled by its issue)."""
MUTANTS: list = []
