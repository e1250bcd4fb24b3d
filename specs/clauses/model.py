"""Clauses of the model itself: properties every transition has, whatever its component (DESIGN.md §6)."""
from . import register

_SRC = "t1virtio DESIGN.md §6 (real sizes: tables indexed in place)"

register([
    ("MODEL-index-in-range", "invariant", _SRC, "index safety",
     "every table entry a transition reads or writes lies inside its table whenever the step's guards hold"),
])

register([
    ("MODEL-policy-known", "caller", "t1virtio DESIGN.md §3 (presets and policies)", "policy",
     "a version policy is given explicitly and is one of the named values; an unknown name or field value is "
     "refused, never replaced by a default"),
])

register([
    ("MODEL-reference-agrees", "invariant", "t1virtio DESIGN.md §7 (machines: the model against a reference)",
     "machine reference",
     "what the model returns and keeps (order, bytes, lengths, status, features, handles) equals the stateful "
     "machine's independent reference of the same operations"),
    ("MODEL-honest-accepted", "invariant", "t1virtio DESIGN.md §7 (machines: honest peers make progress)",
     "honest progress",
     "an honest peer's well-formed operation is accepted, and an operation with nothing to do is refused as "
     "Exhausted, never as a violation"),
])
