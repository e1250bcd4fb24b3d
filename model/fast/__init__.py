"""The fast path: numba code generated from the model's transitions (DESIGN.md §6).

Imports neither specs nor proofs. numba is imported only by the modules that compile, never at package
import.
"""
