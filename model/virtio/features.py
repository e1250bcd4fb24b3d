"""Feature bits and their negotiation (virtio 1.3 §2.2, chapter 6 "Reserved Feature Bits").

The device offers the features it understands; the driver accepts a subset; FEATURES_OK closes
the negotiation (model/virtio/status.py). This module holds the bit numbers, which bits the model
knows per device type on the MMIO transport, the "requires" tables of the device types, and the
pure predicates both sides use: an offer is well formed, an accepted set is valid, and the honest
driver's choice (``negotiate_features``).

Scope decisions (docs/virtio-status.md): feature words are 64 bits wide (bits 64-127 are not
modeled); devices and drivers are non-transitional, so the legacy bits NOTIFY_ON_EMPTY (24) and
ANY_LAYOUT (27) are not accepted; the transport is virtio-mmio, which supports neither SR_IOV (PCI
only) nor ADMIN_VQ (transport-mmio.tex "Features reserved for future use"); SUSPEND (43, virtio
1.4) is not modeled.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FEATURE_BITS = 64                # width of a modeled feature word (two 32-bit MMIO selector words)

# chapter 6: device-independent bits
VIRTIO_F_NOTIFY_ON_EMPTY = 24    # legacy only
VIRTIO_F_ANY_LAYOUT = 27         # legacy only
VIRTIO_F_INDIRECT_DESC = 28
VIRTIO_F_EVENT_IDX = 29
VIRTIO_F_VERSION_1 = 32
VIRTIO_F_ACCESS_PLATFORM = 33
VIRTIO_F_RING_PACKED = 34
VIRTIO_F_IN_ORDER = 35
VIRTIO_F_ORDER_PLATFORM = 36
VIRTIO_F_SR_IOV = 37             # PCI only
VIRTIO_F_NOTIFICATION_DATA = 38
VIRTIO_F_NOTIF_CONFIG_DATA = 39
VIRTIO_F_RING_RESET = 40
VIRTIO_F_ADMIN_VQ = 41           # not on MMIO


def bit(n: int) -> int:
    """Return the mask of feature bit ``n``."""
    return 1 << n


def mask(*ns: int) -> int:
    """Return the mask of feature bits ``ns``."""
    m = 0
    for n in ns:
        m |= bit(n)
    return m


# Bits 24-40 and 43 that a non-transitional MMIO driver and device may negotiate (§2.2, ch. 6).
MMIO_TRANSPORT_FEATURES = mask(VIRTIO_F_INDIRECT_DESC, VIRTIO_F_EVENT_IDX, VIRTIO_F_VERSION_1,
                               VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_RING_PACKED, VIRTIO_F_IN_ORDER,
                               VIRTIO_F_ORDER_PLATFORM, VIRTIO_F_NOTIFICATION_DATA,
                               VIRTIO_F_NOTIF_CONFIG_DATA, VIRTIO_F_RING_RESET)

# Reserved Feature Bits, device: "MAY fail to operate further if ... is not accepted".
MAY_REQUIRE = mask(VIRTIO_F_VERSION_1, VIRTIO_F_ACCESS_PLATFORM, VIRTIO_F_ORDER_PLATFORM)


@dataclass(frozen=True, slots=True)
class DeviceType:
    """A device type: its id, the device-specific bits it defines, and its "Requires" rows.

    A row ``(feature, any_of)`` says: ``feature`` requires at least one bit of mask ``any_of``
    ("Requires A or B"); a feature needing A and B has one row for each.
    """

    name: str
    device_id: int
    features: int
    requires: tuple[tuple[int, int], ...] = ()


# virtio-net (device-types/net, "Feature bit requirements"), bits below 64
NET_CSUM, NET_GUEST_CSUM, NET_CTRL_GUEST_OFFLOADS, NET_MTU, NET_MAC = 0, 1, 2, 3, 5
NET_GUEST_TSO4, NET_GUEST_TSO6, NET_GUEST_ECN, NET_GUEST_UFO = 7, 8, 9, 10
NET_HOST_TSO4, NET_HOST_TSO6, NET_HOST_ECN, NET_HOST_UFO = 11, 12, 13, 14
NET_MRG_RXBUF, NET_STATUS, NET_CTRL_VQ, NET_CTRL_RX, NET_CTRL_VLAN = 15, 16, 17, 18, 19
NET_CTRL_RX_EXTRA, NET_GUEST_ANNOUNCE, NET_MQ, NET_CTRL_MAC_ADDR = 20, 21, 22, 23
NET_DEVICE_STATS, NET_HASH_TUNNEL, NET_VQ_NOTF_COAL, NET_NOTF_COAL = 50, 51, 52, 53
NET_GUEST_USO4, NET_GUEST_USO6, NET_HOST_USO, NET_HASH_REPORT = 54, 55, 56, 57
NET_GUEST_HDRLEN, NET_RSS, NET_RSC_EXT, NET_STANDBY, NET_SPEED_DUPLEX = 59, 60, 61, 62, 63

NET = DeviceType("net", 1, mask(
    NET_CSUM, NET_GUEST_CSUM, NET_CTRL_GUEST_OFFLOADS, NET_MTU, NET_MAC, NET_GUEST_TSO4, NET_GUEST_TSO6,
    NET_GUEST_ECN, NET_GUEST_UFO, NET_HOST_TSO4, NET_HOST_TSO6, NET_HOST_ECN, NET_HOST_UFO, NET_MRG_RXBUF,
    NET_STATUS, NET_CTRL_VQ, NET_CTRL_RX, NET_CTRL_VLAN, NET_CTRL_RX_EXTRA, NET_GUEST_ANNOUNCE, NET_MQ,
    NET_CTRL_MAC_ADDR, NET_DEVICE_STATS, NET_HASH_TUNNEL, NET_VQ_NOTF_COAL, NET_NOTF_COAL, NET_GUEST_USO4,
    NET_GUEST_USO6, NET_HOST_USO, NET_HASH_REPORT, NET_GUEST_HDRLEN, NET_RSS, NET_RSC_EXT, NET_STANDBY,
    NET_SPEED_DUPLEX), requires=(
    (NET_GUEST_TSO4, bit(NET_GUEST_CSUM)), (NET_GUEST_TSO6, bit(NET_GUEST_CSUM)),
    (NET_GUEST_ECN, mask(NET_GUEST_TSO4, NET_GUEST_TSO6)), (NET_GUEST_UFO, bit(NET_GUEST_CSUM)),
    (NET_GUEST_USO4, bit(NET_GUEST_CSUM)), (NET_GUEST_USO6, bit(NET_GUEST_CSUM)),
    (NET_HOST_TSO4, bit(NET_CSUM)), (NET_HOST_TSO6, bit(NET_CSUM)),
    (NET_HOST_ECN, mask(NET_HOST_TSO4, NET_HOST_TSO6)), (NET_HOST_UFO, bit(NET_CSUM)),
    (NET_HOST_USO, bit(NET_CSUM)),
    (NET_CTRL_RX, bit(NET_CTRL_VQ)), (NET_CTRL_VLAN, bit(NET_CTRL_VQ)), (NET_GUEST_ANNOUNCE, bit(NET_CTRL_VQ)),
    (NET_MQ, bit(NET_CTRL_VQ)), (NET_CTRL_MAC_ADDR, bit(NET_CTRL_VQ)), (NET_NOTF_COAL, bit(NET_CTRL_VQ)),
    (NET_RSC_EXT, mask(NET_HOST_TSO4, NET_HOST_TSO6)), (NET_RSS, bit(NET_CTRL_VQ)),
    (NET_VQ_NOTF_COAL, bit(NET_CTRL_VQ)),
    (NET_HASH_TUNNEL, bit(NET_CTRL_VQ)), (NET_HASH_TUNNEL, mask(NET_RSS, NET_HASH_REPORT))))

# virtio-blk, virtio-console, virtio-rng (entropy): no "Requires" rows in the spec; legacy-only
# bits (BLK BARRIER 0, SCSI 7) are left out.
BLK = DeviceType("blk", 2, mask(1, 2, 4, 5, 6, 9, 10, 11, 12, 13, 14, 15, 16, 17))
CONSOLE = DeviceType("console", 3, mask(0, 1, 2))
RNG = DeviceType("rng", 4, 0)

DEVICE_TYPES = (NET, BLK, CONSOLE, RNG)


def _requirement_depth() -> int:
    """Return the longest "requires" chain of any device type (bounds the negotiation fixpoint)."""
    best = 0
    for t in DEVICE_TYPES:
        needs = {}
        for f, any_of in t.requires:
            needs.setdefault(f, set()).update(n for n in range(FEATURE_BITS) if any_of >> n & 1)

        def depth(f: int, seen: frozenset = frozenset()) -> int:
            if f in seen:
                raise ValueError(f"{t.name}: feature {f} requires itself")
            return 1 + max((depth(g, seen | {f}) for g in needs.get(f, ())), default=0)
        best = max([best] + [depth(f) for f in needs])
    return best


REQUIREMENT_DEPTH = _requirement_depth()


def is_set(L: Any, features: Any, n: int) -> Any:
    """Return whether feature bit ``n`` is in ``features``."""
    return (features & bit(n)) != 0


def is_subset(L: Any, a: Any, b: Any) -> Any:
    """Return whether every bit of ``a`` is in ``b``."""
    return (a & ~b) == 0


def word(like: Any, value: int) -> Any:
    """Return the constant ``value`` as a feature word of the same kind as ``like`` (int or 64-bit vector)."""
    return (like & 0) | value


def get_known_features(L: Any, device_id: Any, like: Any = 0) -> Any:
    """Return the bits a driver may accept for ``device_id`` on MMIO (only the device-independent ones
    for a device type the model does not know)."""
    out = word(like, MMIO_TRANSPORT_FEATURES)
    for t in reversed(DEVICE_TYPES):
        out = L.If(device_id == t.device_id, word(like, t.features | MMIO_TRANSPORT_FEATURES), out)
    return out


def _candidate_types(device_id: Any) -> tuple[DeviceType, ...]:
    """Return the types ``device_id`` may be: all of them for a symbolic id (a concrete id keeps
    only its own, which gives the same result faster: the other rows are masked off anyway)."""
    if isinstance(device_id, int):
        return tuple(t for t in DEVICE_TYPES if t.device_id == device_id)
    return DEVICE_TYPES


def get_unmet_requirements(L: Any, device_id: Any, features: Any) -> Any:
    """Return the features in ``features`` whose "Requires" row is not met by ``features``."""
    out = word(features, 0)
    for t in _candidate_types(device_id):
        for f, any_of in t.requires:
            unmet = L.And(device_id == t.device_id, is_set(L, features, f), (features & any_of) == 0)
            out = out | L.If(unmet, word(features, bit(f)), word(features, 0))
    return out


def is_requirement_closed(L: Any, device_id: Any, features: Any) -> Any:
    """Return whether every feature in ``features`` has what it requires (§2.2.1, §2.2.2)."""
    return get_unmet_requirements(L, device_id, features) == 0


def is_valid_offer(L: Any, device_id: Any, offered: Any) -> Any:
    """Return whether a device may offer ``offered``: requirements offered too, and VERSION_1."""
    return L.And(is_requirement_closed(L, device_id, offered), is_set(L, offered, VIRTIO_F_VERSION_1))


def is_acceptable(L: Any, device_id: Any, offered: Any, required: Any, accepted: Any) -> Any:
    """Return whether the device lets FEATURES_OK stick for ``accepted`` (§2.2.2).

    The device accepts any valid subset (its SHOULD) except one lacking a feature its policy
    ``required`` insists on (chapter 6: it MAY fail without VERSION_1, ACCESS_PLATFORM,
    ORDER_PLATFORM).
    """
    return L.And(is_subset(L, accepted, offered), is_subset(L, accepted, get_known_features(L, device_id, accepted)),
                 is_requirement_closed(L, device_id, accepted), is_subset(L, required, accepted))


def negotiate_features(L: Any, device_id: Any, offered: Any, wanted: Any) -> Any:
    """Return the set an honest driver accepts from ``offered`` when it understands ``wanted``.

    §2.2.1: only offered, known bits; drop every feature whose requirement is missing (a bounded
    fixpoint: ``REQUIREMENT_DEPTH`` rounds reach it); chapter 6: VERSION_1 whenever offered.
    """
    f = (wanted | bit(VIRTIO_F_VERSION_1)) & offered & get_known_features(L, device_id, offered)
    for _ in range(REQUIREMENT_DEPTH):
        f = f & ~get_unmet_requirements(L, device_id, f)
    return f
