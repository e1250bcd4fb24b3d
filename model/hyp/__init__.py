"""The hypervisor: memory isolation and grants, message queues, doorbells (Gunyah-, pKVM-style)."""
