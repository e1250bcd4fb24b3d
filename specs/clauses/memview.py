"""Clauses of VM-bound memory access (isolation at the source; DESIGN.md §2, §4)."""
from . import register

register([
    ("HYP-MEM-no-right", "access", "DESIGN.md §4; pKVM mem_protect.c; Gunyah addrspace", "VM-bound accessor",
     "a VM reads or writes only bytes of pages it holds a live right to, with that right (R for reads, W for writes)"),
])
