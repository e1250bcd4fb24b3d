"""The conformance oracle: other implementations checked against the model (DESIGN.md §7).

Traces and vectors (JSON lines, ``docs/formats/``), ``t1virtio oracle check``, ``t1virtio vectors export``
and live adapters (Python, subprocess JSON lines, shared ring memory). Sits on top of the model and the
specs: it may import ``specs.invariants`` and ``specs.rules``; nothing in the model imports it.
"""
