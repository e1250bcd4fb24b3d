"""The hypervisor-emulated virtio-mmio page (Gunyah ``hyp/vm/virtio_mmio``; facts/upstream.md §3.5).

One 4 KiB page with the virtio-mmio v2 layout, mapped read-only into the frontend and read/write into the
backend. Frontend reads hit the page; frontend writes fault and the hypervisor emulates them
(``EmulatedPage.trap_write``: naturally aligned, 32-bit anywhere, 8-bit only inside the config area, else an
access fault), updating the banked register file (``regs``, two-phase reset) and the page it mirrors. The
backend talks to the hypervisor through the hypercalls of §3.5: ``get_notification`` (fetch-and-clear the
notified queues and the reasons), ``assert_virq`` (DENIED while a reset is pending), ``acknowledge_reset``,
``get_drv_features``, ``get_queue_info``.
"""
from __future__ import annotations

from typing import Any

from t1virtio import errors
from t1virtio.transport import regs
from t1virtio.virtio import status as S

PAGE = 0x1000
# Gunyah ``reason`` bits
NEW_BUFFER, RESET_RQST, DRIVER_OK_REASON, FAILED_REASON = 1, 2, 8, 16
# registers the page shows (everything the frontend can read)
MIRRORED = tuple(sorted(regs.READABLE))


class EmulatedPage:
    """The page, its banked register file and the backend's pending notification."""

    def __init__(self, dev: S.DeviceStatusState, num_max: tuple, config: bytes = b"", vendor_id: int = 0):
        if len(num_max) > regs.MAX_VQS:
            raise errors.fail("TRANSPORT-MMIO-selector", f"{len(num_max)} queues > VIRTIO_MMIO_MAX_VQS")
        self.regs = regs.RegisterFile(dev, num_max, config, vendor_id, two_phase=True)
        self.page = bytearray(PAGE)
        self.vqs_bitmap = 0
        self.reason = 0
        self.last_out: Any = None
        self.sync()

    @property
    def state(self) -> regs.RegFileState:
        return self.regs.state

    def sync(self) -> None:
        """Mirror the register file into the page (the hypervisor does it on every emulated write)."""
        for off in MIRRORED:
            self.page[off:off + 4] = self.regs.read(off).to_bytes(4, "little")
        cfg = bytes(self.regs.config[:PAGE - regs.CONFIG])
        self.page[regs.CONFIG:regs.CONFIG + len(cfg)] = cfg

    def mirror_ok(self) -> bool:
        """Whether the page shows the register file (TRANSPORT-EMUL-page-mirror)."""
        return all(int.from_bytes(self.page[o:o + 4], "little") == self.regs.read(o) for o in MIRRORED)

    # --- the frontend's faulting writes
    def trap_write(self, offset: int, value: int, width: int = 4) -> None:
        """Emulate a frontend write; ``AccessFault`` for a bad access, the register's clause for a refused one."""
        in_config = regs.CONFIG <= offset < PAGE
        aligned = width in (1, 4) and offset % width == 0 and 0 <= offset < PAGE
        if not aligned or (width == 1 and not in_config) or value >> (8 * width) \
                or (not in_config and offset not in regs.WRITABLE):
            raise errors.fail("TRANSPORT-EMUL-access", f"{width}-byte write of {value:#x} at {offset:#x}")
        self.last_out = None
        if in_config:
            self.regs.write_config_bytes(offset - regs.CONFIG, value, width)
        else:
            old = self.state.dev.status
            self.regs.write(offset, value)
            self._reason(offset, value, old)
        self.last_out = self.regs.last_out
        self.sync()

    def _reason(self, offset: int, value: int, old_status: int) -> None:
        new = self.state.dev.status
        if offset == regs.QUEUE_NOTIFY:
            self.vqs_bitmap |= 1 << value
            self.reason |= NEW_BUFFER
        elif offset == regs.STATUS:
            if value == 0 and self.state.reset_pending:
                self.reason |= RESET_RQST
            elif new & S.DRIVER_OK and not old_status & S.DRIVER_OK:
                self.reason |= DRIVER_OK_REASON
            elif new & S.FAILED and not old_status & S.FAILED:
                self.reason |= FAILED_REASON

    # --- the frontend's reads (no hypervisor involvement)
    def frontend_read(self, offset: int, width: int = 4) -> int:
        return int.from_bytes(self.page[offset:offset + width], "little")

    def frontend_irq(self) -> bool:
        """The frontend's VIRQ: asserted while InterruptStatus is non-zero."""
        return self.state.line

    # --- backend hypercalls
    def get_notification(self) -> tuple[int, int]:
        """Fetch and clear (notified queues bitmap, reason); the backend VIRQ deasserts."""
        out = (self.vqs_bitmap, self.reason)
        self.vqs_bitmap = self.reason = 0
        return out

    def assert_virq(self, reasons: int) -> None:
        """``backend_assert_virq``: InterruptStatus |= reasons; DENIED while a reset is pending."""
        self.regs.run(regs.device_interrupt, f"reasons {reasons:#x}", reasons=reasons)
        self.sync()

    def use_queue(self, queue: int) -> None:
        self.regs.run(regs.device_use_queue, f"queue {queue}", queue=queue)

    def acknowledge_reset(self) -> None:
        """Complete a pending reset: status reads 0."""
        self.regs.run(regs.backend_ack_reset, "acknowledge reset")
        self.sync()

    def get_drv_features(self, sel: int) -> int:
        return (self.state.dev.driver_features >> (32 * sel)) & regs.WORD

    def get_queue_info(self, queue: int) -> dict:
        p = self.state.params[queue * regs.NPARAM:(queue + 1) * regs.NPARAM]
        return {"num": p[0], "ready": self.state.ready[queue], "desc": p[1] | p[2] << 32,
                "driver": p[3] | p[4] << 32, "device": p[5] | p[6] << 32}


class EmulatedFrontend:
    """The driver side: plain loads from the read-only page, stores that trap."""

    def __init__(self, page: EmulatedPage):
        self.page = page

    def read(self, offset: int, width: int = 4) -> int:
        return self.page.frontend_read(offset, width)

    def write(self, offset: int, value: int, width: int = 4) -> None:
        self.page.trap_write(offset, value, width)

    def notify(self, queue: int) -> None:
        self.page.trap_write(regs.QUEUE_NOTIFY, queue)

    def reset(self, max_polls: int = 64) -> bool:
        """Write 0 and poll Status until it reads 0 (bounded); return whether the reset completed."""
        self.write(regs.STATUS, 0)
        for _ in range(max_polls):
            if self.read(regs.STATUS) == 0:
                return True
        return False


def connect(dev: S.DeviceStatusState, num_max: tuple, config: bytes = b"",
            vendor_id: int = 0) -> tuple[EmulatedFrontend, EmulatedPage]:
    """A frontend over a fresh emulated page; the page object is the backend's hypercall interface."""
    page = EmulatedPage(dev, num_max, config, vendor_id)
    return EmulatedFrontend(page), page
