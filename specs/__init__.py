"""What must hold, written once: clauses, invariants and rules (DESIGN.md §3)."""
