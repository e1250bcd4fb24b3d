"""Clauses of the hypervisor doorbell and its VIRQ source (Gunyah doorbell; facts/upstream.md §3.0, §3.2, §6.5)."""
from . import register

_SRC = "gunyah-hypervisor@36ca3a2 hyp/ipc/doorbell/src/doorbell.c; docs/api/gunyah_api.md"
_VIC = "gunyah-hypervisor@36ca3a2 hyp/interfaces/virq (virq.h, virq.ev), hyp/vm/vgic/src/deliver.c"
_OBJ = ("gunyah-hypervisor@36ca3a2 hyp/core/cspace_twolevel/src/cspace_twolevel.c (cspace_lookup_object, "
        "active_only), hyp/core/object_standard/templates/object.c.tmpl (object_activate, object_free), "
        "hyp/ipc/doorbell/{doorbell.ev, src/hypercalls.c}; docs/api/gunyah_api.md (Doorbell Object Creation, "
        "object_activate)")

register([
    ("HYP-DBL-word", "caller", _SRC, "doorbell hypercalls (X1, X2)",
     "a flag or mask word is one 64-bit register (the preset's doorbell width): a wider or negative "
     "value cannot be passed (the model refuses it as ARGUMENT_INVALID)"),
    ("HYP-DBL-receive-zero", "caller", _SRC, "doorbell_receive",
     "receive with clear_flags == 0 fails with ARGUMENT_INVALID and changes nothing"),
    ("HYP-DBL-virq-bound", "caller", _SRC + "; hyp/interfaces/vic/include/vic.h", "doorbell_bind_virq",
     "bind_virq on a doorbell whose VIRQ source is already bound fails with VIRQ_BOUND and changes nothing"),
    ("HYP-DBL-virq-number", "caller", _VIC + "; facts §3.0 (virtual IRQ binding)", "vic_bind_shared",
     "bind_virq to a VIRQ number the receiving VM's interrupt controller does not have fails with "
     "ARGUMENT_INVALID and changes nothing"),
    ("HYP-DBL-virq-busy", "caller", _VIC + "; facts §3.0 (virtual IRQ binding)", "vic_bind_shared",
     "bind_virq to a VIRQ number that already has a source (another doorbell, a queue line) fails with BUSY "
     "and changes nothing"),
    ("HYP-DBL-unbound", "invariant", _VIC, "virq_assert on an unbound source",
     "an unbound VIRQ source is neither level-asserted, edge-asserted nor in service (virq_assert "
     "returns VIRQ_NOT_BOUND; unbind clears the source)"),
    ("HYP-DBL-level", "invariant", _SRC + "; " + _VIC, "doorbell_send / doorbell_mask / check_pending",
     "while the VIRQ is bound, an enabled flag being set means the level assertion is up (a level "
     "VIRQ is pending or in service): no lost wakeup, except for flags already set when the VIRQ "
     "was bound, which bind does not signal"),
    ("HYP-DBL-send-or", "rule", _SRC, "doorbell_send",
     "send always succeeds (also with new_flags == 0), returns the old flags, and ORs the new flags "
     "in: no flag outside the ack mask is lost, none appears that was neither set nor sent; masks unchanged"),
    ("HYP-DBL-auto-ack", "rule", _SRC, "doorbell_send / doorbell_mask",
     "flags in the ack mask are cleared exactly when the step makes a level assertion (enabled flags set), "
     "and only then"),
    ("HYP-DBL-send-virq", "rule", _SRC + "; " + _VIC, "doorbell_send virq_assert(edge_only)",
     "send asserts the bound VIRQ: a level assertion when enabled flags are set, else an edge-only "
     "assertion (it only sets the edge bit, which matters for edge-triggered VIRQs)"),
    ("HYP-DBL-receive", "rule", _SRC, "doorbell_receive",
     "an accepted receive returns the old flags and clears exactly clear_flags; the VIRQ and the masks "
     "are not touched (the level deasserts lazily, at check_pending)"),
    ("HYP-DBL-mask", "rule", _SRC, "doorbell_mask",
     "mask stores both masks; it deasserts the VIRQ when enabled flags were set and no longer are, "
     "asserts it (level) when none were and now are, and otherwise leaves the VIRQ alone"),
    ("HYP-DBL-reset", "rule", _SRC, "doorbell_reset",
     "reset sets flags = 0, ack_mask = 0, enable_mask = all ones and clears the level assertion; "
     "the binding is kept"),
    ("HYP-DBL-bind", "rule", _SRC + "; hyp/interfaces/vic/include/vic.h", "doorbell_bind_virq / doorbell_unbind_virq",
     "bind of an unbound source to an existing VIRQ number with no other source binds a fresh, "
     "unasserted VIRQ with the chosen trigger and does not signal flags already set; unbind always "
     "succeeds and clears the source"),
    ("HYP-DBL-deliver", "rule", _VIC, "VIRQ acknowledge (list register)",
     "the receiver takes the VIRQ only when it is bound, pending and not in service; taking it makes "
     "it in service and clears the edge bit; otherwise nothing changes (spurious)"),
    ("HYP-DBL-check-pending", "rule", _SRC + "; " + _VIC, "doorbell_handle_virq_check_pending at EOI",
     "at EOI the level assertion stays up exactly when enabled flags are set or the VIRQ was "
     "reasserted since it was taken; EOI of a VIRQ not in service changes nothing"),
    ("HYP-DBL-lost-wakeup", "invariant", _SRC + "; facts §6.5", "sender/receiver race",
     "a send of enabled flags that comes after the receiver's receive, at any point of the "
     "receiver's handler, leaves the VIRQ pending"),
    ("HYP-DBL-receiver-protocol", "invariant", "docs/api/gunyah_api.md (doorbell receive); facts §3.2",
     "receiver protocol",
     "a receiver that takes the VIRQ, receives every enabled flag and then EOIs leaves nothing pending; "
     "EOI before receive re-raises the VIRQ"),
    ("HYP-DBL-object-state", "caller", _OBJ, "cspace_lookup_doorbell / object_activate",
     "send, receive, mask, reset, bind_virq and unbind_virq need an ACTIVE doorbell (the capability lookup "
     "is active_only), activate an INIT one, destroy a live one; otherwise OBJECT_STATE and nothing changes"),
    ("HYP-DBL-lifecycle", "invariant", _OBJ, "doorbell object state",
     "a doorbell is INIT, ACTIVE or destroyed; only an ACTIVE doorbell has a bound VIRQ (binding needs "
     "ACTIVE, deactivation unbinds), so an INIT or destroyed one is quiet"),
    ("HYP-DBL-lifecycle-rule", "rule", _OBJ, "object_activate / object deactivate of a doorbell",
     "activate of an INIT doorbell always succeeds (no configure call, no activate handler, so no "
     "OBJECT_CONFIG) and changes nothing else; destroy unbinds and clears the VIRQ source"),
])
