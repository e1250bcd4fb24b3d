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
