"""Clauses of the register transports: virtio-mmio v2 over a message-queue pair (the seed's ``mmio_ops``), the
hypervisor-emulated virtio-mmio page (Gunyah), and shared memory plus doorbells (ivshmem2-virtio).

Sources: virtio 1.3 §4.2 (MMIO transport, facts/upstream.md §5.2), Gunyah ``hyp/vm/virtio_mmio`` (facts §3.5),
the ivshmem 2.0 draft and ``virtio_ivshmem.c`` (facts §5.3), the seed's option b (facts §5.5), and this model's
decisions (docs/transport.md). Ids: ``TRANSPORT-<part>-<what>``.
"""
from . import register

_MMIO = "oasis-tcs/virtio-spec@15f488c transport-mmio.tex"
_GUNYAH = "quic/gunyah-hypervisor hyp/vm/virtio_mmio (facts/upstream.md §3.5)"
_IVSHMEM = "siemens/jailhouse ivshmem-v2-specification.md, virtio_ivshmem.c (facts/upstream.md §5.3)"
_MODEL = "t1virtio model (docs/transport.md)"

register([
    # the five properties every transport keeps
    ("TRANSPORT-one-in-flight", "invariant", _MODEL, "facts §5.5, §6.8",
     "at most one register request is in flight: the driver sends the next only after the previous one's reply"),
    ("TRANSPORT-status-monotone", "invariant", _MMIO, "virtio-1.3:2.1.1 MUST 2; 4.2.2.2",
     "device status bits only grow (a bit set since the last reset is still set) until a reset"),
    ("TRANSPORT-no-queue-before-driver-ok", "invariant", _MMIO, "virtio-1.3:2.1.2 MUST 1; 3.1.1 MUST 5",
     "without DRIVER_OK no queue was notified or used since the last reset"),
    ("TRANSPORT-queue-frozen-while-ready", "peer", _MMIO, "virtio-1.3:4.2.3.2 (QueueReady != 0)",
     "while a queue is ready the driver does not change its size or addresses (they equal those it was enabled with)"),
    ("TRANSPORT-interrupt-line", "invariant", _MMIO, "virtio-1.3:4.2.2.1 (single interrupt line)",
     "the interrupt line is asserted exactly while InterruptStatus is non-zero"),
    # register file (virtio-mmio v2)
    ("TRANSPORT-MMIO-selector", "peer", _GUNYAH, "facts §3.5, §6.6; virtio-1.3:4.2.2",
     "DeviceFeaturesSel and DriverFeaturesSel are below 2 and QueueSel names a banked queue (Gunyah faults otherwise)"),
    ("TRANSPORT-MMIO-queue-size", "peer", _MMIO, "virtio-1.3:4.2.2.2 (QueueSize <= QueueSizeMax)",
     "QueueNum is at most QueueNumMax; a queue is enabled only with a non-zero size on an available queue"),
    ("TRANSPORT-MMIO-param", "caller", _MODEL, "virtio-1.3:4.2.2",
     "a queue parameter register is one of QueueNum, QueueDesc/Driver/Device Low/High"),
    ("TRANSPORT-MMIO-notify-index", "peer", _MMIO, "virtio-1.3:4.2.2 (QueueNotify)",
     "QueueNotify names a banked queue"),
    ("TRANSPORT-MMIO-queue-not-ready", "peer", _MMIO, "virtio-1.3:4.2.2.1 (device must not access a queue whose QueueReady is 0)",
     "the device uses a queue only while its QueueReady is 1"),
    ("TRANSPORT-MMIO-ack-written-only", "rule", _MMIO, "virtio-1.3:4.2.2 (InterruptACK); facts §6.6",
     "an InterruptACK write clears exactly the written bits of InterruptStatus and nothing else"),
    ("TRANSPORT-MMIO-interrupt-bits", "peer", _MMIO, "virtio-1.3:4.2.2 (InterruptStatus bits 0-1)",
     "the device raises only defined interrupt reasons (bit 0 used buffer, bit 1 configuration change)"),
    ("TRANSPORT-MMIO-reset-clears", "rule", _MMIO, "virtio-1.3:4.2.2.1 (on reset clear InterruptStatus and QueueReady)",
     "a completed reset leaves status 0, InterruptStatus 0, the line low and every QueueReady 0"),
    ("TRANSPORT-MMIO-ready-params", "invariant", _MMIO, "virtio-1.3:4.2.3.2",
     "a ready queue has a non-zero size not above its maximum; selectors stay in range"),
    ("TRANSPORT-MMIO-config-generation", "invariant", _IVSHMEM, "virtio-1.3:4.2.2 ConfigGeneration; facts §5.3",
     "the configuration generation is odd exactly while the device updates its configuration"),
    ("TRANSPORT-MMIO-config-update", "caller", _MODEL, "virtio-1.3:2.5; facts §5.3",
     "a configuration update is begun only when none is running and ended only when one is"),
    ("TRANSPORT-MMIO-config-stable", "peer", _MMIO, "virtio-1.3:4.2.2 ConfigGeneration; 2.5.1",
     "the honest driver takes a configuration read only when the generation was even and unchanged around it"),
    # channel (message-queue pair, ivshmem write_transaction)
    ("TRANSPORT-CHAN-busy", "peer", _MODEL, "facts §5.5, §5.3 (write_transaction != 0)",
     "a request arrives only when no other request is in flight"),
    ("TRANSPORT-CHAN-reply-order", "peer", _MODEL, "facts §5.5 (correlation rule)",
     "a reply answers the request in flight: it carries that request's sequence number"),
    ("TRANSPORT-CHAN-reply-unsolicited", "peer", _MODEL, "facts §5.5",
     "no reply arrives while no request is in flight"),
    ("TRANSPORT-WIRE-malformed", "peer", _MODEL, "docs/transport.md (mmio_ops wire format v1)",
     "a message has the wire format's version, kind, size and length; anything else is refused"),
    # Gunyah emulated page
    ("TRANSPORT-EMUL-two-phase", "rule", _GUNYAH, "facts §3.5 (status write 0: DEVICE_NEEDS_RESET until acknowledged)",
     "on the emulated page a reset request sets DEVICE_NEEDS_RESET, clears every QueueReady and waits for the backend"),
    ("TRANSPORT-EMUL-reset-wait", "peer", _MODEL, "facts §3.5 (frontend sees completion when status reads 0)",
     "while a reset is pending the driver writes nothing (it polls Status until it reads 0)"),
    ("TRANSPORT-EMUL-ack-unrequested", "caller", _GUNYAH, "facts §3.5 (virtio_mmio_backend_acknowledge_reset)",
     "the backend acknowledges a reset only while one is pending"),
    ("TRANSPORT-EMUL-assert-denied", "peer", _GUNYAH, "facts §3.5 (backend_assert_virq DENIED while DEVICE_NEEDS_RESET)",
     "the backend raises no interrupt and uses no queue while a reset is pending"),
    ("TRANSPORT-EMUL-reset-pending", "invariant", _GUNYAH, "facts §3.5",
     "a pending reset happens only on a two-phase page, with DEVICE_NEEDS_RESET set and no queue ready"),
    ("TRANSPORT-EMUL-access", "access", _GUNYAH, "facts §3.5 (naturally aligned; 32-bit anywhere, 8-bit in config)",
     "a trapped frontend write is naturally aligned, 32-bit (8-bit only inside the config area), to a writable register"),
    ("TRANSPORT-EMUL-page-mirror", "invariant", _GUNYAH, "facts §3.5",
     "the frontend's read-only page shows the register file (Status, InterruptStatus, QueueReady and features of the selection)"),
    # ivshmem2-virtio
    ("TRANSPORT-IVSHMEM-peer-ready", "peer", _IVSHMEM, "facts §5.3 (peer state != READY: backend failed)",
     "a register write or doorbell is exchanged only while both peers show READY in the state table"),
])
