"""Clauses of the hypervisor message queue (Gunyah msgqueue; facts/upstream.md §3.0, §3.1, §6.4)."""
from . import register

_SRC = "gunyah-hypervisor@36ca3a2 hyp/ipc/msgqueue; docs/api/gunyah_api.md"
_OBJ = "gunyah-hypervisor@36ca3a2 object lifecycle (facts §3.0); hyp/ipc/msgqueue"
_VIC = "gunyah-hypervisor@36ca3a2 hyp/ipc/msgqueue (bind/unbind, check_pending); hyp/interfaces/virq; hyp/vm/vgic"
_BIND = ("gunyah-hypervisor@36ca3a2 hyp/ipc/msgqueue/src/msgqueue.c (msgqueue_bind), hyp/vm/vgic/src/distrib.c "
         "(vic_bind_shared), hyp/interfaces/vic/include/vic.h; docs/api/gunyah_api.md (Message Queue Bind Send/Receive vIRQ)")

register([
    ("HYP-MSGQ-configure", "caller", _SRC, "msgqueue_configure",
     "a queue needs 1 <= depth <= 255 and 1 <= max message size <= 1023 (ARGUMENT_INVALID)"),
    ("HYP-MSGQ-flags", "caller", _SRC, "msgqueue_send",
     "send flags other than PUSH (bit 0) are reserved and must be 0 (ARGUMENT_INVALID)"),
    ("HYP-MSGQ-full", "exhausted", _SRC, "msgqueue_send",
     "send on a queue holding depth messages fails with MSGQUEUE_FULL and stores nothing"),
    ("HYP-MSGQ-size", "caller", _SRC, "msgqueue_send",
     "a message is 1..max_msg_size bytes (ARGUMENT_SIZE otherwise)"),
    ("HYP-MSGQ-empty", "exhausted", _SRC, "msgqueue_receive",
     "receive on an empty queue fails with MSGQUEUE_EMPTY"),
    ("HYP-MSGQ-overflow", "caller", _SRC, "msgqueue_receive",
     "a receive buffer smaller than the head message fails with ADDR_OVERFLOW; the message stays queued"),
    ("HYP-MSGQ-notfull-thd", "caller", _SRC, "msgqueue_configure_send",
     "the not-full threshold must be below depth, or -1 to keep it (ARGUMENT_INVALID)"),
    ("HYP-MSGQ-notempty-thd", "caller", _SRC, "msgqueue_configure_receive",
     "the not-empty threshold must be 1..depth, -2 for depth, or -1 to keep it (ARGUMENT_INVALID)"),
    ("HYP-MSGQ-count", "invariant", _SRC, "msgqueue state",
     "0 <= count <= depth <= 255, the head slot lies in the ring of an active queue, sent - received == count"),
    ("HYP-MSGQ-fifo", "invariant", _SRC, "msgqueue ring",
     "queued messages are the ones sent and not yet received, oldest at the head (FIFO, exactly once)"),
    ("HYP-MSGQ-msg-size", "invariant", _SRC, "msgqueue ring",
     "every queued message is 1..max_msg_size bytes"),
    ("HYP-MSGQ-thresholds", "invariant", _SRC, "msgqueue thresholds",
     "on an active queue 0 <= notfull_thd < depth and 1 <= notempty_thd <= depth"),
    ("HYP-MSGQ-rx-virq", "invariant", _SRC, "receive VIRQ check_pending",
     "a bound receive line whose condition count >= notempty_thd holds is asserted (unless bound late and not signalled since)"),
    ("HYP-MSGQ-tx-virq", "invariant", _SRC, "send VIRQ check_pending",
     "a bound send line whose condition count <= notfull_thd holds is asserted (unless bound late and not signalled since)"),
    ("HYP-MSGQ-send-rule", "rule", _SRC, "msgqueue_send",
     "an accepted send appends exactly one message of the given size at the tail and reports not_full == (count < depth); a refused one changes nothing"),
    ("HYP-MSGQ-receive-rule", "rule", _SRC, "msgqueue_receive",
     "an accepted receive returns the head message and removes exactly it, reporting not_empty == (count > 0)"),
    ("HYP-MSGQ-flush-rule", "rule", _SRC, "msgqueue_flush",
     "flush empties the queue; if it held messages it asserts the not-full line and clears the not-empty line"),
    ("HYP-MSGQ-holdoff", "caller", _SRC, "msgqueue_configure_send / msgqueue_configure_receive",
     "the holdoff argument must be -1 (the default); anything else fails with UNIMPLEMENTED, before any other check"),
    ("HYP-MSGQ-object-state", "caller", _OBJ, "object lifecycle",
     "configure and activate need an INIT object, the queue hypercalls an ACTIVE one, destroy a live one "
     "(OBJECT_STATE)"),
    ("HYP-MSGQ-object-config", "caller", _OBJ, "msgqueue activate",
     "activating a queue whose depth or maximum message size is 0 (never configured) fails with OBJECT_CONFIG"),
    ("HYP-MSGQ-send-fault", "access", _SRC, "msgqueue_send (copy from the caller)",
     "a send whose buffer the caller may not read (unmapped, or no read right) fails with ADDR_INVALID and "
     "queues nothing"),
    ("HYP-MSGQ-receive-fault", "access", _SRC, "msgqueue_receive (copy to the caller)",
     "a receive whose buffer the caller may not write for the message's length fails with ADDR_INVALID; "
     "the message stays queued"),
    ("HYP-MSGQ-virq-bound", "caller", _VIC, "msgqueue_bind_send_virq / msgqueue_bind_receive_virq",
     "binding a queue line that is already bound fails with VIRQ_BOUND and changes nothing"),
    ("HYP-MSGQ-virq-number", "caller", _BIND, "vic_bind_shared (queue line)",
     "binding a queue line to a VIRQ number that is not a shared VIRQ of the VM's interrupt controller (not an SPI, "
     "or beyond its sources) fails with ARGUMENT_INVALID and changes nothing; checked after VIRQ_BOUND"),
    ("HYP-MSGQ-virq-busy", "caller", _BIND, "vic_bind_shared (queue line)",
     "binding a queue line to a VIRQ number that already has a source (the other line, a doorbell, any other "
     "source of that VM) fails with BUSY and changes nothing; checked after ARGUMENT_INVALID"),
    ("HYP-MSGQ-lifecycle", "invariant", _OBJ, "object state",
     "the object is INIT (depth and size 0 or configured), ACTIVE (configured) or destroyed; only an ACTIVE "
     "queue holds messages or bound lines"),
    ("HYP-MSGQ-line-unbound", "invariant", _VIC, "virq source of each line",
     "an unbound line is neither asserted nor in service; a line bound late whose condition held is unasserted "
     "until its next assertion"),
    ("HYP-MSGQ-lifecycle-rule", "rule", _OBJ, "configure / activate / destroy",
     "configure stores depth and size on an INIT object; activate makes it ACTIVE, empty, with thresholds "
     "depth - 1 and 1; destroy empties it and unbinds both lines"),
    ("HYP-MSGQ-keep", "rule", _SRC, "msgqueue_configure_send / msgqueue_configure_receive (-1)",
     "a threshold of -1 changes nothing: neither the threshold nor the line (a line a PUSH raised stays raised)"),
    ("HYP-MSGQ-threshold-rule", "rule", _SRC, "msgqueue_configure_send / msgqueue_configure_receive",
     "a new threshold (-2: depth) is stored and its line is asserted if its condition holds, else cleared"),
    ("HYP-MSGQ-bind-rule", "rule", _VIC, "bind / unbind of a queue line",
     "bind of an unbound line to an existing, free VIRQ number binds it to that number unasserted (a condition "
     "that already holds is not signalled); unbind "
     "clears the line; the queue is untouched"),
    ("HYP-MSGQ-deliver", "rule", _VIC, "VIRQ acknowledge",
     "the VM takes a line only when it is bound, asserted and not in service; taking it clears the reasserted bit"),
    ("HYP-MSGQ-check-pending", "rule", _VIC, "msgqueue check_pending at EOI",
     "at EOI a line stays asserted exactly when it was and (it was reasserted since taken, or its condition "
     "holds: count <= notfull_thd / count >= notempty_thd)"),
])
