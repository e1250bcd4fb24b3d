"""The generated fast path of the split and packed rings (issue 12; docs/performance.md "Rings").

Generated (traced from the model and printed by ``codegen``), per queue size: every guarded step of the
symbolic cores the model's concrete sides call on the hot path:

=================  ===============================================================================
split driver       ``add_buf`` (the selection as a list, ``trace.SelList``), ``kick_prepare``, ``get_used``,
                   ``disable_cb``, ``enable_cb``
split device       ``pop_avail`` (its guards alone as ``pop_check``, then the commit), ``add_used``,
                   ``need_notify``, ``enable_notify``, ``disable_notify``
chain walk         ``chain.walk_step`` (one descriptor of the split device's hardened walk)
packed driver      ``packed_add``, ``packed_get_used``, ``packed_kick_prepare``
packed device      ``packed_pop``, ``packed_push_used``, ``packed_need_notify``
packed walk        ``packed_walk_ring_desc``, ``packed_walk_table_desc``
=================  ===============================================================================

What is hand-written (``GLUE``): the byte layer of the model's concrete classes (``SplitDriver``,
``SplitDevice``, ``PackedDriver``, ``PackedDevice``): which ring bytes each op reads (little-endian, over one
flat ``uint8`` memory at address 0) and hands to the traced step as arguments, and which bytes it writes
once the step is accepted, plus the driver's Linux free list (``next_link``/``free_head``, ids). Those
classes are plain Python, not written in the vocabulary, so they cannot be traced; the glue follows them
line by line and the equality tests (tests/test_fast_rings.py) compare every ring byte after every step.
The batch drivers (``split_rt``, ``packed_rt``: the bench's round trips) are hand-written too.

State: the model's core states as arrays (``trace.to_arrays``); the split driver's ``chain_sel`` (a table
of selections) is stored as count / first member / one link per descriptor (``trace.SelTable``): the record
of a head in flight is exact; a record of a head no longer in flight is dead (every read is behind
``is_head_in_flight``) and is not kept.

The caller passes the model modules in (``Models(split, chain, packed)``): the fast path may not import
the transitions (the layer contract).
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from t1virtio.fast import codegen
from t1virtio.preset import VIRTQUEUE_MAX_SIZE
from t1virtio.fast.trace import SelList, from_arrays, layout_of, rebuild_out, to_arrays, trace

U64 = (1 << 64) - 1
DESC_SIZE = 16
from t1virtio.virtio.desc import VIRTQ_DESC_F_AVAIL as F_AVAIL  # noqa: E402
from t1virtio.virtio.desc import VIRTQ_DESC_F_INDIRECT as F_INDIRECT  # noqa: E402
from t1virtio.virtio.desc import VIRTQ_DESC_F_NEXT as F_NEXT  # noqa: E402
from t1virtio.virtio.desc import VIRTQ_DESC_F_USED as F_USED  # noqa: E402
from t1virtio.virtio.desc import VIRTQ_DESC_F_WRITE as F_WRITE  # noqa: E402
INLINE = True          # generated functions and the per-op glue are inlined into the batch drivers
SEL = {"t_chain_sel": ("t_chain_sel_first", "t_chain_sel_link")}


@dataclass(frozen=True)
class Models:
    """The model modules the transitions come from (passed in: the fast path does not import them)."""

    split: Any
    chain: Any
    packed: Any


def _concrete() -> Any:
    from t1virtio.logic import CONCRETE
    return CONCRETE


def _pop_check(m: Models) -> Any:
    sp = m.split

    def fn(L: Any, v: Any, avail_idx: Any, head: Any) -> Any:
        return sp.step(sp.pop_avail(L, v, avail_idx, head, 0).guards, v)
    return fn


def split_specs(m: Models, N: int) -> dict:
    """name -> (fn, nargs, side, extra tables) of the split ring (side: ``drv``, ``dev`` or ``walk``)."""
    sp, ch = m.split, m.chain
    return {
        "s_add_buf": (lambda L, s, head, cnt, no, ni, tot, wl, ind, tab:
                      sp.add_buf(L, s, head, SelList(tab, cnt), no, ni, tot, wl, ind != 0), 7, "drv", {"sel": N}),
        "s_kick_prepare": (lambda L, s, ev, fl: sp.kick_prepare(L, s, ev, fl), 2, "drv", {}),
        "s_get_used": (lambda L, s, ui, i, ln: sp.get_used(L, s, ui, i, ln), 3, "drv", {}),
        "s_disable_cb": (lambda L, s: sp.disable_cb(L, s), 0, "drv", {}),
        "s_enable_cb": (lambda L, s, ui: sp.enable_cb(L, s, ui), 1, "drv", {}),
        "s_pop_check": (_pop_check(m), 2, "dev", {}),
        "s_pop_avail": (lambda L, v, ai, h, wl: sp.pop_avail(L, v, ai, h, wl), 3, "dev", {}),
        "s_add_used": (lambda L, v, i, ln: sp.add_used(L, v, i, ln), 2, "dev", {}),
        "s_need_notify": (lambda L, v, ue, fl: sp.need_notify(L, v, ue, fl), 2, "dev", {}),
        "s_enable_notify": (lambda L, v, ai: sp.enable_notify(L, v, ai), 1, "dev", {}),
        "s_disable_notify": (lambda L, v: sp.disable_notify(L, v), 0, "dev", {}),
        "s_walk_step": (lambda L, w, ln, fl, nx, inr: ch.walk_step(L, w, ln, fl, nx, inr != 0), 4, "walk", {}),
    }


def packed_specs(m: Models) -> dict:
    pk = m.packed
    return {
        "p_add": (lambda L, d, n, wl, i: pk.packed_add(L, d, n, wl, i), 3, "pdrv", {}),
        "p_get_used": (lambda L, d, a, u, i, ln: pk.packed_get_used(L, d, a != 0, u != 0, i, ln), 4, "pdrv", {}),
        "p_kick_prepare": (lambda L, d, fl, off, ew: pk.packed_kick_prepare(L, d, fl, off, ew != 0), 3, "pdrv", {}),
        "p_pop": (lambda L, v, a, u, n, i, wl: pk.packed_pop(L, v, a != 0, u != 0, n, i, wl), 5, "pdev", {}),
        "p_push_used": (lambda L, v, i, ln: pk.packed_push_used(L, v, i, ln), 2, "pdev", {}),
        "p_need_notify": (lambda L, v, fl, off, ew: pk.packed_need_notify(L, v, fl, off, ew != 0), 3, "pdev", {}),
        "p_walk_ring": (lambda L, w, ok, nx, wr, ind, ln, inr, iok:
                        pk.packed_walk_ring_desc(L, w, ok != 0, nx != 0, wr != 0, ind != 0, ln, inr != 0, iok != 0),
                        7, "pwalk", {}),
        "p_walk_table": (lambda L, w, wr, ind, ln, inr: pk.packed_walk_table_desc(L, w, wr != 0, ind != 0, ln, inr != 0),
                         4, "pwalk", {}),
    }


def templates(m: Models, N: int) -> dict:
    """side -> a template state (its layout is the side's arrays)."""
    C = _concrete()
    pk = m.packed
    return {"drv": m.split.driver_init(N, True, True), "dev": m.split.device_init(N, True),
            "walk": m.chain.walk_start(N, 0, True),
            "pdrv": pk.packed_driver_create(C, N, True, N).new, "pdev": pk.packed_device_create(C, N, True, N).new,
            "pwalk": pk.chain_walk(N, N)}


def table_names(layout: Any) -> list:
    out = ["sc"]
    for t in layout.tables:
        out.append(t)
        if t in SEL:
            out.extend(SEL[t])
    return out


# ---------------------------------------------------------------------------------------------
# Hand-written: the byte layer of the concrete sides and the batch drivers. Placeholders: {D} split
# driver tables, {V} split device tables, {W} walk sc, {PD}/{PV}/{PW} the packed ones; {S_x} the sc slot of
# field x of the side's state (e.g. {SD_avail_idx}); {C_x} the code of a clause in a function. A split ring slot
# is ``idx & (size - 1)`` (the model's ``idx % size``): a split ring's size is a power of two (queue_ready refuses
# any other, QUEUE_POW2), and a division by a size only known at run time costs ~30 cycles.

GLUE = r'''

@njit(cache=True, boundscheck=False{INL})
def ld(m, a, w):
    """Little-endian load of ``w`` bytes at ``a``."""
    v = U(0)
    for k in range(w):
        v |= U(m[a + U(k)]) << U(8 * k)
    return v


@njit(cache=True, boundscheck=False{INL})
def st(m, a, w, v):
    for k in range(w):
        m[a + U(k)] = (v >> U(8 * k)) & U(255)


@njit(cache=True, boundscheck=False{INL})
def split_add({D}, args, out, sel, mem, cfg, dx, next_link, last_of, seg_addr, seg_len, n_out, n_in):
    """SplitDriver.add_buf: ``n_out`` readable then ``n_in`` writable segments; returns 0 or the clause code
    (dx[1] counts the notifies: Linux's forced notify on NO_SPACE with out parts, and the kick at 0xFFFF)."""
    size = cfg[3]
    nseg = n_out + n_in
    total = U(0)
    wlen = U(0)
    for j in range(U(0), nseg):
        total += seg_len[j]
        if j >= n_out:
            wlen += seg_len[j]
    num_free = D_sc[{SD_num_free}]
    indirect = cfg[9] != U(0) and D_sc[{SD_indirect}] != U(0) and nseg > U(1) and num_free != U(0) and nseg <= cfg[7]
    used = U(1) if indirect else nseg
    k = used
    if num_free < k:
        k = num_free
    if size < k:
        k = size
    i = dx[0]
    for j in range(U(0), k):
        sel[j] = i
        i = next_link[i]
    args[0] = dx[0]
    args[1] = k
    args[2] = n_out
    args[3] = n_in
    args[4] = total
    args[5] = wlen
    args[6] = U(1) if indirect else U(0)
    c = s_add_buf({D}, sel, args, out)
    if c != 0:
        if c == {C_s_add_buf_NO_SPACE} and n_out > U(0):
            dx[1] += U(1)
        return c
    head = dx[0]
    if indirect:
        table = cfg[6] + head * cfg[7] * U(16)
        for j in range(U(0), nseg):
            a = table + U(16) * U(j)
            fl = U(2) if j >= n_out else U(0)
            if j != nseg - U(1):
                fl |= U(1)
            st(mem, a, 8, seg_addr[j])
            st(mem, a + U(8), 4, seg_len[j])
            st(mem, a + U(12), 2, fl)
            st(mem, a + U(14), 2, U(j + 1))
        a = cfg[0] + U(16) * head
        st(mem, a, 8, table)
        st(mem, a + U(8), 4, nseg * U(16))
        st(mem, a + U(12), 2, U(4))
        st(mem, a + U(14), 2, next_link[head])
    else:
        for j in range(U(0), k):
            d = sel[j]
            a = cfg[0] + U(16) * d
            fl = U(2) if j >= n_out else U(0)
            if j != nseg - U(1):
                fl |= U(1)
            st(mem, a, 8, seg_addr[j])
            st(mem, a + U(8), 4, seg_len[j])
            st(mem, a + U(12), 2, fl)
            st(mem, a + U(14), 2, next_link[d])
    last_of[head] = sel[k - U(1)]
    dx[0] = i
    ai = D_sc[{SD_avail_idx}]
    st(mem, cfg[1] + U(4) + U(2) * ((ai - U(1)) & (size - U(1))), 2, head)
    st(mem, cfg[1] + U(2), 2, ai)
    out[0] = head
    if D_sc[{SD_num_added}] == U(0xFFFF):
        if split_kick({D}, args, out, mem, cfg) != 0:
            dx[1] += U(1)
        out[0] = head
    return 0


@njit(cache=True, boundscheck=False{INL})
def split_kick({D}, args, out, mem, cfg):
    """SplitDriver.kick_prepare: returns 1 to notify."""
    size = cfg[3]
    args[0] = ld(mem, cfg[2] + U(4) + U(8) * size, 2)
    args[1] = ld(mem, cfg[2], 2)
    s_kick_prepare({D}, args, out)
    return out[0]


@njit(cache=True, boundscheck=False{INL})
def split_get({D}, args, out, mem, cfg, dx, next_link, last_of):
    """SplitDriver.get_used: 0 and out = (id, len), or the clause code."""
    size = cfg[3]
    args[0] = ld(mem, cfg[2] + U(2), 2)
    slot = D_sc[{SD_last_used}] & (size - U(1))
    args[1] = ld(mem, cfg[2] + U(4) + U(8) * slot, 4)
    args[2] = ld(mem, cfg[2] + U(8) + U(8) * slot, 4)
    c = s_get_used({D}, args, out)
    if c != 0:
        return c
    h = out[0]
    next_link[last_of[h]] = dx[0]
    dx[0] = h
    if D_sc[{SD_cb_disabled}] == U(0):
        st(mem, cfg[1] + U(4) + U(2) * size, 2, D_sc[{SD_used_event}])
    return 0


@njit(cache=True, boundscheck=False{INL})
def split_walk(W_sc, args, out, mem, cfg, head, seg_addr, seg_len, seg_w, nseg):
    """chain.walk_chain over the ring bytes: 0, or the walk's clause code + 100, or 99 for a read outside
    memory (the model's access fault); segments in seg_* (nseg[0] of them); out[0] = writable bytes."""
    size = cfg[3]
    W_sc[{SW_size}] = size
    W_sc[{SW_indirect_ok}] = cfg[8]
    W_sc[{SW_ttl}] = size
    W_sc[{SW_table_len}] = size
    W_sc[{SW_in_table}] = U(0)
    W_sc[{SW_index}] = head
    W_sc[{SW_total}] = U(0)
    W_sc[{SW_seen_writable}] = U(0)
    W_sc[{SW_done}] = U(0)
    table = U(0)
    n = U(0)
    wlen = U(0)
    nmem = U(len(mem))
    for _ in range(U(2) * size + U(1)):
        in_table = W_sc[{SW_in_table}] != U(0)
        idx = W_sc[{SW_index}]
        a = (table + U(16) * idx) if in_table else (cfg[0] + U(16) * idx)
        if a > nmem or nmem - a < U(16):
            return 99
        addr = ld(mem, a, 8)
        ln = ld(mem, a + U(8), 4)
        fl = ld(mem, a + U(12), 2)
        nx = ld(mem, a + U(14), 2)
        args[0] = ln
        args[1] = fl
        args[2] = nx
        args[3] = U(1) if (addr >= cfg[4] and addr <= cfg[5] and ln <= cfg[5] - addr) else U(0)
        c = s_walk_step(W_sc, args, out)
        if c != 0:
            return 100 + c
        if W_sc[{SW_in_table}] != U(0) and not in_table:
            table = addr
        else:
            if n < U(len(seg_addr)):
                seg_addr[n] = addr
                seg_len[n] = ln
                seg_w[n] = (fl >> U(1)) & U(1)
            n += U(1)
            if fl & U(2):
                wlen += ln
        if W_sc[{SW_done}] != U(0):
            nseg[0] = n
            out[0] = wlen
            return 0
    return 98


@njit(cache=True, boundscheck=False{INL})
def split_pop({V}, W_sc, args, out, mem, cfg, seg_addr, seg_len, seg_w, nseg):
    """SplitDevice.pop_avail: 0 and out[0] = head, or the clause code of pop_avail, or 100 + the walk's."""
    size = cfg[3]
    ai = ld(mem, cfg[1] + U(2), 2)
    head = ld(mem, cfg[1] + U(4) + U(2) * (V_sc[{SV_last_avail}] & (size - U(1))), 2)
    args[0] = ai
    args[1] = head
    c = s_pop_check({V}, args, out)
    if c != 0:
        return c
    c = split_walk(W_sc, args, out, mem, cfg, head, seg_addr, seg_len, seg_w, nseg)
    if c != 0:
        return c
    args[0] = ai
    args[1] = head
    args[2] = out[0]
    c = s_pop_avail({V}, args, out)
    out[0] = head
    return c


@njit(cache=True, boundscheck=False{INL})
def split_used({V}, args, out, mem, cfg, head, length):
    """SplitDevice.add_used."""
    size = cfg[3]
    slot = V_sc[{SV_used_idx}] & (size - U(1))
    args[0] = head
    args[1] = length
    c = s_add_used({V}, args, out)
    if c != 0:
        return c
    a = cfg[2] + U(4) + U(8) * slot
    st(mem, a, 4, head)
    st(mem, a + U(4), 4, V_t_used_len[slot])
    st(mem, cfg[2] + U(2), 2, V_sc[{SV_used_idx}])
    return 0


@njit(cache=True, boundscheck=False{INL})
def split_need({V}, args, out, mem, cfg):
    size = cfg[3]
    args[0] = ld(mem, cfg[1] + U(4) + U(2) * size, 2)
    args[1] = ld(mem, cfg[1], 2)
    s_need_notify({V}, args, out)
    return out[0]


@njit(cache=True, boundscheck=False{INL})
def split_enable({V}, args, out, mem, cfg):
    """SplitDevice.enable_notify: publish, re-read avail idx; returns 1 if nothing new arrived."""
    size = cfg[3]
    if V_sc[{SV_event_idx}] != U(0):
        st(mem, cfg[2] + U(4) + U(8) * size, 2, V_sc[{SV_last_avail}])
    else:
        st(mem, cfg[2], 2, U(0))
    args[0] = ld(mem, cfg[1] + U(2), 2)
    s_enable_notify({V}, args, out)
    return out[0]


@njit(cache=True, boundscheck=False{NRT})
def split_rt({D}, {V}, W_sc, args, out, sel, mem, cfg, dx, next_link, last_of, seg_addr, seg_len, seg_w, nseg,
             data, seglen, n, depth, copy, sa, sl, scratch):
    """The bench's split round trips, as the peer's ``vpeer_ring_bench`` loop: until ``n`` buffers are back, add
    buffers (one readable + one writable segment of ``seglen``, buffer slot ``added % depth`` at ``data``) until
    ``depth`` are in flight or the ring is full, kick_prepare; the device pops every chain (copying the readable
    bytes into the writable part when ``copy``) and marks it used with ``seglen``, re-enables and pops again if
    needed, need_notify; the driver takes every used buffer. Returns 0 or the first refusal's code."""
    added = U(0)
    done = U(0)
    slot = U(0)
    while done < n:
        while added - done < depth and added < n:
            sa[0] = data + slot * U(2) * seglen
            sa[1] = sa[0] + seglen
            sl[0] = seglen
            sl[1] = seglen
            c = split_add({D}, args, out, sel, mem, cfg, dx, next_link, last_of, sa, sl, U(1), U(1))
            if c == {C_s_add_buf_NO_SPACE}:
                break
            if c != 0:
                return c
            added += U(1)
            slot += U(1)
            if slot == depth:
                slot = U(0)
        split_kick({D}, args, out, mem, cfg)
        while True:
            while True:
                c = split_pop({V}, W_sc, args, out, mem, cfg, seg_addr, seg_len, seg_w, nseg)
                if c == {C_s_pop_check_EMPTY}:
                    break
                if c != 0:
                    return c
                h = out[0]
                if copy:            # as vpeer_ring_bench: pull the readable bytes, push them into the writable part
                    memcpy(scratch, U(0), mem, seg_addr[0], seglen)
                    for j in range(U(0), nseg[0]):
                        if seg_w[j]:
                            memcpy(mem, seg_addr[j], scratch, U(0), seglen)
                c = split_used({V}, args, out, mem, cfg, h, seglen)
                if c != 0:
                    return c
            if split_enable({V}, args, out, mem, cfg):
                break
        split_need({V}, args, out, mem, cfg)
        while True:
            c = split_get({D}, args, out, mem, cfg, dx, next_link, last_of)
            if c == {C_s_get_used_EMPTY}:
                break
            if c != 0:
                return c
            done += U(1)
    return 0


@njit(cache=True, boundscheck=False{NRT})
def memcpy(dst, doff, src, soff, n):
    for i in range(U(0), n):
        dst[doff + i] = src[soff + i]


@njit(cache=True, boundscheck=False{INL})
def st_body(mem, a, addr, ln, id):
    st(mem, a, 8, addr)
    st(mem, a + U(8), 4, ln)
    st(mem, a + U(12), 2, id)


@njit(cache=True, boundscheck=False{INL})
def packed_add({PD}, args, out, mem, cfg, px, next_id, last_id, seg_addr, seg_len, n_out, n_in):
    """PackedDriver.add: 0 and out[0] = id, or the clause code. cfg: desc, driver, device, num, region lo, hi,
    indirect arena, indirect max, device indirect, driver indirect, device chain limit."""
    num = cfg[3]
    nseg = n_out + n_in
    wlen = U(0)
    for j in range(U(0), nseg):
        if j >= n_out:
            wlen += seg_len[j]
    mx = cfg[7] if cfg[7] < num else num
    ind = cfg[9] != U(0) and nseg > U(1) and nseg <= mx and PD_sc[{SPD_num_free}] > U(0)
    n = U(1) if ind else nseg
    id = px[0]
    args[0] = n
    args[1] = wlen
    args[2] = id
    c = p_add({PD}, args, out)
    if c != 0:
        return c
    head = out[0]
    wrap = out[1]
    if ind:
        table = cfg[6] + id * cfg[7] * U(16)
        for k in range(U(0), nseg):
            a = table + U(16) * k
            st_body(mem, a, seg_addr[k], seg_len[k], U(0))
            st(mem, a + U(14), 2, U(2) if k >= n_out else U(0))
        st_body(mem, cfg[0] + U(16) * head, table, U(16) * nseg, id)
        hf = (U(0x80) if wrap else U(0x8000)) | U(4)
        px[0] = next_id[id]
        last_id[id] = id
    else:
        hf = U(0)
        curr = id
        for k in range(U(0), nseg):
            slot = head + k
            wk = wrap
            if slot >= num:
                slot -= num
                wk = U(1) - wrap
            fl = U(0x80) if wk else U(0x8000)
            if k < n - U(1):
                fl |= U(1)
            if k >= n_out:
                fl |= U(2)
            st_body(mem, cfg[0] + U(16) * slot, seg_addr[k], seg_len[k], id)
            if k == U(0):
                hf = fl
            else:
                st(mem, cfg[0] + U(16) * slot + U(14), 2, fl)
            last_id[id] = curr
            curr = next_id[curr]
        px[0] = curr
    st(mem, cfg[0] + U(16) * head + U(14), 2, hf)
    out[0] = id
    return 0


@njit(cache=True, boundscheck=False{INL})
def packed_kick({PD}, args, out, mem, cfg):
    ow = ld(mem, cfg[2], 2)
    args[0] = ld(mem, cfg[2] + U(2), 2)
    args[1] = ow & U(0x7FFF)
    args[2] = ow >> U(15)
    p_kick_prepare({PD}, args, out)
    return out[0]


@njit(cache=True, boundscheck=False{INL})
def packed_get({PD}, args, out, mem, cfg, px, next_id, last_id):
    """PackedDriver.get_used: 0 and out = (id, len); 200 when nothing is used (no step); else the clause code."""
    a = cfg[0] + U(16) * PD_sc[{SPD_last_used}]
    ln = ld(mem, a + U(8), 4)
    id = ld(mem, a + U(12), 2)
    fl = ld(mem, a + U(14), 2)
    args[0] = (fl >> U(7)) & U(1)
    args[1] = (fl >> U(15)) & U(1)
    args[2] = id
    args[3] = ln if fl & U(2) else U(0)
    c = p_get_used({PD}, args, out)
    if c == {C_p_get_used_NO_USED}:
        return 200
    if c != 0:
        return c
    next_id[last_id[id]] = px[0]
    px[0] = id
    if PD_sc[{SPD_event_flags}] == U(2):
        st(mem, cfg[1], 2, PD_sc[{SPD_last_used}] | (PD_sc[{SPD_used_wrap}] << U(15)))
    return 0


@njit(cache=True, boundscheck=False{INL})
def packed_pop({PV}, PW_sc, args, out, mem, cfg, seg_addr, seg_len, seg_w, nseg):
    """PackedDevice.pop: 0 and out = (id, ndesc); 200 when the head is not available (no step); 100 + the ring
    walk's code, 150 + the table walk's, 99 for a read outside memory; else packed_pop's code."""
    num = cfg[3]
    na = PV_sc[{SPV_next_avail}]
    aw = PV_sc[{SPV_avail_wrap}]
    hfl = ld(mem, cfg[0] + U(16) * na + U(14), 2)
    PW_sc[{SPW_num}] = num
    PW_sc[{SPW_limit}] = cfg[10]
    PW_sc[{SPW_ring_descs}] = U(0)
    PW_sc[{SPW_table_descs}] = U(0)
    PW_sc[{SPW_total}] = U(0)
    PW_sc[{SPW_wlen}] = U(0)
    PW_sc[{SPW_writing}] = U(0)
    PW_sc[{SPW_indirect}] = U(0)
    nmem = U(len(mem))
    n = U(0)
    for k in range(U(0), num + U(1)):
        if k < num:
            slot = na + k
            wrap = aw
            if slot >= num:
                slot -= num
                wrap = U(1) - aw
        else:
            slot = na
            wrap = U(1) - aw
        a = cfg[0] + U(16) * slot
        addr = ld(mem, a, 8)
        ln = ld(mem, a + U(8), 4)
        id = ld(mem, a + U(12), 2)
        fl = ld(mem, a + U(14), 2)
        av = (fl >> U(7)) & U(1)
        us = (fl >> U(15)) & U(1)
        ok = av == wrap and us != wrap
        if k == U(0) and not ok:
            return 200
        ind = (fl & U(4)) != U(0)
        nx = (fl & U(1)) != U(0)
        wr = (fl & U(2)) != U(0)
        args[0] = U(1) if ok else U(0)
        args[1] = U(1) if nx else U(0)
        args[2] = U(1) if wr else U(0)
        args[3] = U(1) if ind else U(0)
        args[4] = ln
        args[5] = U(1) if (addr >= cfg[4] and addr <= cfg[5] and ln <= cfg[5] - addr) else U(0)
        args[6] = cfg[8]
        c = p_walk_ring(PW_sc, args, out)
        if c != 0:
            return 100 + c
        if ind:
            m = ln // U(16)
            if m > cfg[10]:
                m = cfg[10]
            for e in range(U(0), m):
                ea = addr + U(16) * e
                if ea > nmem or nmem - ea < U(16):
                    return 99
                eaddr = ld(mem, ea, 8)
                eln = ld(mem, ea + U(8), 4)
                efl = ld(mem, ea + U(14), 2)
                args[0] = U(1) if (efl & U(2)) != U(0) else U(0)
                args[1] = U(1) if (efl & U(4)) != U(0) else U(0)
                args[2] = eln
                args[3] = U(1) if (eaddr >= cfg[4] and eaddr <= cfg[5] and eln <= cfg[5] - eaddr) else U(0)
                c = p_walk_table(PW_sc, args, out)
                if c != 0:
                    return 150 + c
                if n < U(len(seg_addr)):
                    seg_addr[n] = eaddr
                    seg_len[n] = eln
                    seg_w[n] = (efl >> U(1)) & U(1)
                n += U(1)
        else:
            if n < U(len(seg_addr)):
                seg_addr[n] = addr
                seg_len[n] = ln
                seg_w[n] = U(1) if wr else U(0)
            n += U(1)
        if not nx:
            nseg[0] = n
            args[0] = (hfl >> U(7)) & U(1)
            args[1] = (hfl >> U(15)) & U(1)
            args[2] = k + U(1)
            args[3] = id
            args[4] = PW_sc[{SPW_wlen}]
            c = p_pop({PV}, args, out)
            out[0] = id
            out[1] = k + U(1)
            return c
    return 98


@njit(cache=True, boundscheck=False{INL})
def packed_push({PV}, args, out, mem, cfg, id, length):
    args[0] = id
    args[1] = length
    c = p_push_used({PV}, args, out)
    if c != 0:
        return c
    a = cfg[0] + U(16) * out[0]
    st(mem, a + U(8), 4, length)
    st(mem, a + U(12), 2, id)
    fl = U(0x8080) if out[1] else U(0)
    if length != U(0):
        fl |= U(2)
    st(mem, a + U(14), 2, fl)
    return 0


@njit(cache=True, boundscheck=False{INL})
def packed_need({PV}, args, out, mem, cfg):
    ow = ld(mem, cfg[1], 2)
    args[0] = ld(mem, cfg[1] + U(2), 2)
    args[1] = ow & U(0x7FFF)
    args[2] = ow >> U(15)
    p_need_notify({PV}, args, out)
    return out[0]


@njit(cache=True, boundscheck=False{NRT})
def packed_rt({PD}, {PV}, PW_sc, args, out, mem, cfg, px, next_id, last_id, seg_addr, seg_len, seg_w, nseg,
              data, seglen, n, depth, copy, sa, sl, scratch):
    """The bench's packed round trips (as split_rt): add to ``depth`` in flight, kick_prepare; pop until none,
    push_used each (copying when ``copy``); need_notify; get_used until none."""
    added = U(0)
    done = U(0)
    slot = U(0)
    while done < n:
        while added - done < depth and added < n:
            sa[0] = data + slot * U(2) * seglen
            sa[1] = sa[0] + seglen
            sl[0] = seglen
            sl[1] = seglen
            c = packed_add({PD}, args, out, mem, cfg, px, next_id, last_id, sa, sl, U(1), U(1))
            if c == {C_p_add_RING_SPACE}:
                break
            if c != 0:
                return c
            added += U(1)
            slot += U(1)
            if slot == depth:
                slot = U(0)
        packed_kick({PD}, args, out, mem, cfg)
        while True:
            c = packed_pop({PV}, PW_sc, args, out, mem, cfg, seg_addr, seg_len, seg_w, nseg)
            if c == 200:
                break
            if c != 0:
                return c
            h = out[0]
            if copy:
                memcpy(scratch, U(0), mem, seg_addr[0], seglen)
                for j in range(U(0), nseg[0]):
                    if seg_w[j]:
                        memcpy(mem, seg_addr[j], scratch, U(0), seglen)
            c = packed_push({PV}, args, out, mem, cfg, h, seglen)
            if c != 0:
                return c
        packed_need({PV}, args, out, mem, cfg)
        while True:
            c = packed_get({PD}, args, out, mem, cfg, px, next_id, last_id)
            if c == 200:
                break
            if c != 0:
                return c
            done += U(1)
    return 0
'''


def _fill(text: str, layouts: dict, funcs: dict) -> str:
    for side, key in (("drv", "D"), ("dev", "V"), ("walk", "W"), ("pdrv", "PD"), ("pdev", "PV"), ("pwalk", "PW")):
        if side not in layouts:
            continue
        lay = layouts[side]
        names = table_names(lay)
        text = text.replace("{" + key + "}", ", ".join(f"{key}_{t}" for t in names))
        for leaf in lay.leaves:
            if leaf.kind == "scalar":
                text = text.replace("{S" + key + "_" + "_".join(leaf.path) + "}", str(leaf.slot))
    for name, f in funcs.items():
        for k, cl in enumerate(f.clauses):
            tag = cl.rsplit("#", 1)[-1].upper().replace("-", "_")
            text = text.replace("{C_" + name + "_" + tag + "}", str(k + 1))
    return text


def _rename(fn: Any, key: str) -> Any:
    """The function's tables renamed with the side's prefix (``sc`` -> ``D_sc``), so glue can name them."""
    fn.tables = {(t if t in ("args", "out", "sel") else f"{key}_{t}"): n for t, n in fn.tables.items()}
    fn.dynamic = frozenset(f"{key}_{t}" for t in fn.dynamic)
    _ren_block(fn.body, key)
    return fn


def _ren_block(blk: list, key: str) -> None:
    from t1virtio.fast import ir
    for s in blk:
        for attr in ("table",):
            if hasattr(s, attr) and getattr(s, attr) not in ("args", "out", "sel"):
                setattr(s, attr, f"{key}_{getattr(s, attr)}")
        if isinstance(s, ir.Loop):
            if isinstance(s.n, str) and s.n not in ("args", "out", "sel"):
                s.n = f"{key}_{s.n}"
            _ren_block(s.body, key)
        for sub in ("body", "go_body", "f_body"):
            if sub != "body" or not isinstance(s, ir.Loop):
                if hasattr(s, sub):
                    _ren_block(getattr(s, sub), key)


KEYS = {"drv": "D", "dev": "V", "walk": "W", "pdrv": "PD", "pdev": "PV", "pwalk": "PW"}


@dataclass
class FastRings:
    """The generated module of one queue size: functions, layouts per side, the module."""

    N: int
    mode: str
    layouts: dict
    functions: dict
    module: Any
    trace_s: float
    compile_s: float = 0.0

    def arrays(self, side: str, state: Any) -> dict:
        """The side's core state as arrays (numpy in numba mode)."""
        lay = self.layouts[side]
        st_ = state
        sels = {}
        if side == "drv":
            sels = {h: state.chain_sel[h] for h in range(self.N)}
            st_ = _with(state, chain_sel=tuple(0 for _ in range(self.N)))
        raw = to_arrays(lay, st_)
        if side == "drv":
            cnt, first, link = [0] * self.N, [0] * self.N, [0] * self.N
            for h, s in sels.items():      # live records last: theirs are the links kept
                pass
            live = [h for h in range(self.N) if state.in_use[h] and state.chain_of[h] == h]
            for h in live:
                mem = _members(sels[h], self.N)
                cnt[h] = len(mem)
                first[h] = mem[0] if mem else 0
                for a, b in zip(mem, mem[1:]):
                    link[a] = b
            raw["t_chain_sel"], raw["t_chain_sel_first"], raw["t_chain_sel_link"] = cnt, first, link
        if self.mode == "numba":
            import numpy as np
            raw = {k: np.array(v, dtype=np.uint64) for k, v in raw.items()}
        return raw

    def state(self, side: str, arrays: dict) -> Any:
        """The model state of the side's arrays (split driver: records of heads in flight only)."""
        lay = self.layouts[side]
        core = {k: v for k, v in arrays.items() if k in ("sc", *lay.tables)}
        st_ = from_arrays(lay, core)
        if side == "drv":
            n = self.N
            sels = [frozenset() for _ in range(n)]
            link = arrays["t_chain_sel_link"]
            for h in range(n):
                if st_.in_use[h] and st_.chain_of[h] == h:
                    k, x, got = int(arrays["t_chain_sel"][h]), int(arrays["t_chain_sel_first"][h]), []
                    for _ in range(min(k, n)):
                        got.append(x)
                        x = int(link[x])
                    sels[h] = frozenset(got)
            st_ = _with(st_, chain_sel=tuple(sels))
        return st_

    def tabs(self, side: str, arrays: dict) -> list:
        return [arrays[t] for t in table_names(self.layouts[side])]

    def clause(self, name: str, code: int) -> str | None:
        return None if code == 0 else self.functions[name].clauses[code - 1]


def _with(state: Any, **kw: Any) -> Any:
    import dataclasses
    return dataclasses.replace(state, **kw)


def _members(sel: Any, n: int) -> list:
    if isinstance(sel, int):
        return [i for i in range(min(n, sel.bit_length())) if (sel >> i) & 1]
    return sorted(i for i in sel if 0 <= i < n)


_BUILT: dict = {}


def build(m: Models, N: int, mode: str = "numba") -> FastRings:
    """Trace the ring transitions at queue size ``N`` and generate their module with the glue (memoised)."""
    key = (N, mode)
    if key in _BUILT:
        return _BUILT[key]
    t0 = time.perf_counter()
    tpl = templates(m, N)
    layouts = {side: layout_of(s) for side, s in tpl.items()}
    funcs = {}
    specs = {**split_specs(m, N), **packed_specs(m)}
    for name, (fn, nargs, side, extra) in specs.items():
        lay = layouts[side]
        f = trace(fn, lay, nargs, name, frozenset(lay.tables) | set(extra), extra=extra,
                  selections=SEL if side == "drv" else None)
        funcs[name] = _rename(f, KEYS[side])
    extra_src = "\nimport numpy as np\n" + _fill(GLUE, layouts, funcs).replace(
        "{INL}", ", inline='always', _nrt=False" if INLINE else "").replace("{NRT}", ", _nrt=False" if INLINE else "")
    mod = codegen.build_module(list(funcs.values()), mode, extra_src, title=f"rings, queue size {N}",
                               stem="t1vfast_rings", inline=INLINE)
    fr = FastRings(N, mode, layouts, funcs, mod, time.perf_counter() - t0)
    _BUILT[key] = fr
    return fr


def split_clause(fr: FastRings, name: str, code: int) -> str | None:
    """The clause of a glue function's code (``split_pop``: pop_check's, or 100 + the walk's)."""
    if code == 0:
        return None
    if code >= 100:
        return fr.functions["s_walk_step"].clauses[code - 101]
    if code in (98, 99):
        return {98: "walk bound", 99: "memory"}[code]
    return fr.functions[name].clauses[code - 1]


del rebuild_out


# ---------------------------------------------------------------------------------------------
# One op per call (tests, setup): the model's concrete sides' methods over the generated glue

def _np() -> Any:
    import numpy as np
    return np


class _FastSide:
    broken: str | None = None

    def _arr(self, words: list) -> Any:
        return _np().array(words, dtype=_np().uint64)

    def _clause(self, name: str, code: int) -> str | None:
        c = split_clause(self.fr, name, int(code))
        if c is not None and self.is_peer(c):
            self.broken = c
        return c


class FastSplitDriver(_FastSide):
    """``SplitDriver``'s hot-path methods over the generated module; results ``(clause or None, value)``.

    Built from a model driver (``from_model``): its core state, free list and chain records, and a numpy copy
    of its memory (or the array given)."""

    NO_SPACE = "VIRTIO/model/driver#no-space"

    def __init__(self, fr: FastRings, drv: Any, mem: Any, is_peer: Any = lambda c: False):
        np = _np()
        self.fr, self.mem, self.is_peer = fr, mem, is_peer
        self.arrays = fr.arrays("drv", drv.state)
        self.tabs = fr.tabs("drv", self.arrays)
        lay, n = drv.layout, drv.layout.size
        arena = drv.arena or (0, 0)
        self.cfg = self._arr([lay.desc, lay.avail, lay.used, n, 0, 0, arena[0], arena[1], 0, 1 if drv.arena else 0])
        self.dx = self._arr([drv.free_head, 0])
        self.next_link = self._arr(list(drv.next_link))
        self.last_of = self._arr([drv.chains[h][-1] if h in drv.chains else 0 for h in range(n)])
        self.sel = np.zeros(n, np.uint64)
        self.args, self.out = np.zeros(10, np.uint64), np.zeros(4, np.uint64)
        self.broken = drv.broken

    def add_buf(self, out: list, inn: list) -> tuple:
        np = _np()
        segs = list(out) + list(inn)
        sa = self._arr([a for a, _ in segs] or [0])
        sl = self._arr([n for _, n in segs] or [0])
        if self.broken:     # the model still forces its notify when the step would fail for space, then refuses
            tabs = [t.copy() for t in self.tabs]
            dx = self.dx.copy()
            c = self.fr.module.split_add(*tabs, self.args, self.out, self.sel, self.mem.copy(), self.cfg, dx,
                                         self.next_link.copy(), self.last_of.copy(), sa, sl, np.uint64(len(out)),
                                         np.uint64(len(inn)))
            if self.fr.clause("s_add_buf", int(c)) == self.NO_SPACE and out:
                self.dx[1] += 1
            return self.broken, None
        c = self.fr.module.split_add(*self.tabs, self.args, self.out, self.sel, self.mem, self.cfg, self.dx,
                                     self.next_link, self.last_of, sa, sl, np.uint64(len(out)), np.uint64(len(inn)))
        cl = self._clause("s_add_buf", c)
        return (cl, None) if cl else (None, int(self.out[0]))

    def kick_prepare(self) -> tuple:
        if self.broken:
            return self.broken, None
        return None, bool(self.fr.module.split_kick(*self.tabs, self.args, self.out, self.mem, self.cfg))

    def get_used(self) -> tuple:
        if self.broken:
            return self.broken, None
        c = self.fr.module.split_get(*self.tabs, self.args, self.out, self.mem, self.cfg, self.dx, self.next_link,
                                     self.last_of)
        cl = self._clause("s_get_used", c)
        return (cl, None) if cl else (None, (int(self.out[0]), int(self.out[1])))

    @property
    def state(self) -> Any:
        return self.fr.state("drv", self.arrays)

    @property
    def notifies(self) -> int:
        return int(self.dx[1])


class FastSplitDevice(_FastSide):
    """``SplitDevice``'s hot-path methods over the generated module (same addresses in both views)."""

    def __init__(self, fr: FastRings, dev: Any, mem: Any, region: tuple, is_peer: Any = lambda c: False):
        np = _np()
        self.fr, self.mem, self.is_peer = fr, mem, is_peer
        self.arrays = fr.arrays("dev", dev.state)
        self.tabs = fr.tabs("dev", self.arrays)
        lay, n = dev.layout, dev.layout.size
        self.cfg = self._arr([lay.desc, lay.avail, lay.used, n, region[0], region[1], 0, 0,
                              1 if dev.indirect else 0, 0])
        self.wsc = np.zeros(fr.layouts["walk"].nscalars, np.uint64)
        self.seg_addr, self.seg_len, self.seg_w = (np.zeros(2 * n + 1, np.uint64) for _ in range(3))
        self.nseg = np.zeros(1, np.uint64)
        self.args, self.out = np.zeros(10, np.uint64), np.zeros(4, np.uint64)
        self.broken = dev.broken

    def pop_avail(self) -> tuple:
        """(clause, (head, readable, writable))."""
        if self.broken:
            return self.broken, None
        c = self.fr.module.split_pop(*self.tabs, self.wsc, self.args, self.out, self.mem, self.cfg, self.seg_addr,
                                     self.seg_len, self.seg_w, self.nseg)
        cl = self._clause("s_pop_check", c)
        if cl:
            return cl, None
        k = int(self.nseg[0])
        segs = [(int(self.seg_addr[j]), int(self.seg_len[j]), bool(self.seg_w[j])) for j in range(k)]
        return None, (int(self.out[0]), tuple((a, n) for a, n, w in segs if not w),
                      tuple((a, n) for a, n, w in segs if w))

    def add_used(self, head: int, length: int) -> tuple:
        if self.broken:
            return self.broken, None
        np = _np()
        c = self.fr.module.split_used(*self.tabs, self.args, self.out, self.mem, self.cfg, np.uint64(head & U64),
                                      np.uint64(length & U64))
        return self._clause("s_add_used", c), None

    def need_notify(self) -> tuple:
        if self.broken:
            return self.broken, None
        return None, bool(self.fr.module.split_need(*self.tabs, self.args, self.out, self.mem, self.cfg))

    def enable_notify(self) -> tuple:
        if self.broken:     # the model publishes first, then refuses
            lay = self.cfg
            v = self.fr.state("dev", self.arrays)
            if v.event_idx:
                Bytes(self.mem).write(int(lay[2]) + 4 + 8 * int(lay[3]), (v.last_avail & 0xFFFF).to_bytes(2, "little"))
            else:
                Bytes(self.mem).write(int(lay[2]), bytes(2))
            return self.broken, None
        return None, bool(self.fr.module.split_enable(*self.tabs, self.args, self.out, self.mem, self.cfg))

    @property
    def state(self) -> Any:
        return self.fr.state("dev", self.arrays)


class Bytes:
    """A ``MemoryView`` over a numpy ``uint8`` array at address 0 (so a model side can initialise fast memory)."""

    def __init__(self, arr: Any):
        self.arr = arr

    def read(self, addr: int, n: int) -> bytes:
        return bytes(self.arr[addr:addr + n])

    def write(self, addr: int, data: bytes) -> None:
        self.arr[addr:addr + len(data)] = _np().frombuffer(bytes(data), _np().uint8)


def split_round_trips(fr_: FastRings, fd: FastSplitDriver, fv: FastSplitDevice, data: int, seglen: int, n: int,
                      depth: int, copy: int) -> int:
    """``n`` of the bench's round trips in one call (``split_rt``); 0 or the first refusal's code."""
    np = _np()
    cfg = fd.cfg.copy()
    cfg[4], cfg[5], cfg[8] = fv.cfg[4], fv.cfg[5], fv.cfg[8]
    u = np.uint64
    return int(fr_.module.split_rt(*fd.tabs, *fv.tabs, fv.wsc, fd.args, fd.out, fd.sel, fd.mem, cfg, fd.dx,
                                   fd.next_link, fd.last_of, fv.seg_addr, fv.seg_len, fv.seg_w, fv.nseg, u(data),
                                   u(seglen), u(n), u(depth), u(copy), np.zeros(2, np.uint64), np.zeros(2, np.uint64),
                                   np.zeros(max(seglen, 1), np.uint8)))


def fast_vs_linux_split(vp: Any, m: Models, nops: int, seed: int = 1, N: int = VIRTQUEUE_MAX_SIZE,
                        progress: Any = None) -> list:
    """``nops`` random ops on the fast split driver + device and on Linux 6.1's virtio_ring.c + vringh.c (EVENT_IDX,
    legacy layout at 0, the peer's ``split_layout``): adds, kick decisions, pops (heads and segments), completions,
    need_notify and notify_enable decisions, get_buf; the ring bytes compared after every op. Returns mismatches."""
    np = _np()
    rnd = random.Random(seed)
    feats = vp.F_VERSION_1 | vp.F_EVENT_IDX
    lay = vp.split_layout(N)
    mlay = m.split.SplitLayout(N, lay["desc"], lay["avail"], lay["used"])
    data = (lay["size"] + 4095) & ~4095
    size = data + 64 * 256
    buf = bytearray(size)
    lin_d = vp.Driver(vp.GuestMemory(buffer=buf), N, feats, layout=lay)
    lin_v = vp.Device(vp.GuestMemory(buffer=buf), N, feats, layout=lay)
    fm = np.zeros(size, np.uint8)
    view = Bytes(fm)
    fr_ = build(m, N)
    drv = m.split.SplitDriver(view, mlay, event_idx=True)
    dev = m.split.SplitDevice(view, mlay, event_idx=True, in_region=lambda a, n: 0 <= a and a + n <= size)
    fd, fv = FastSplitDriver(fr_, drv, fm), FastSplitDevice(fr_, dev, fm, (0, size))
    ring = slice(0, lay["size"])
    bad: list = []
    held: list = []
    tokens: dict = {}
    for k in range(nops):
        op = rnd.choice(["add", "add", "add", "kick", "pop", "pop", "complete", "complete", "need", "enable", "get",
                         "get"])
        if op == "add":
            n_out, n_in = rnd.randint(0, 2), rnd.randint(0, 2)
            n_out += n_out + n_in == 0
            base = data + (k % 64) * 256
            segs = [(base + 32 * j, rnd.randint(1, 24)) for j in range(n_out + n_in)]
            rc = lin_d.add(segs[:n_out], segs[n_out:], k + 1)
            c, h = fd.add_buf(segs[:n_out], segs[n_out:])
            if (rc == 0) != (c is None):
                bad.append((k, op, rc, c))
            if c is None:
                tokens[h] = k + 1
        elif op == "kick":
            a, b = lin_d.kick_prepare(), fd.kick_prepare()[1]
            if a != b:
                bad.append((k, op, a, b))
        elif op == "pop":
            lc = lin_v.getdesc()
            c, got = fv.pop_avail()
            if (lc is None) != (got is None):
                bad.append((k, op, lc, c))
            elif lc is not None:
                if (lc.head, tuple(lc.readable), tuple(lc.writable)) != got:
                    bad.append((k, op, (lc.head, lc.readable, lc.writable), got))
                held.append((got[0], sum(n for _, n in got[2])))
        elif op == "complete" and held:
            h, wl = held.pop(rnd.randrange(len(held)))
            n = rnd.randint(0, wl)
            rc = lin_v.complete(h, n)
            c, _ = fv.add_used(h, n)
            if (rc == 0) != (c is None):
                bad.append((k, op, rc, c))
        elif op == "need":
            a, b = lin_v.need_notify(), fv.need_notify()[1]
            if a != b:
                bad.append((k, op, a, b))
        elif op == "enable":
            a, b = lin_v.notify_enable(), fv.enable_notify()[1]
            if a != b:
                bad.append((k, op, a, b))
        elif op == "get":
            a = lin_d.get_buf()
            c, got = fd.get_used()
            b = None if c is not None else (tokens.pop(got[0]), got[1])
            if a != b:
                bad.append((k, op, a, b))
        if buf[ring] != fm[ring].tobytes():
            bad.append((k, op, "ring bytes"))
        if bad and len(bad) > 20:
            break
        if progress is not None and k % 10000 == 0:
            progress(k)
    lin_d.close()
    lin_v.close()
    return bad


def packed_clause(fr_: FastRings, name: str, code: int) -> str | None:
    """The clause of a packed glue function's code (``packed_pop``: 100 + the ring walk's, 150 + the table walk's)."""
    if code in (0, 200):
        return None
    if code >= 150:
        return fr_.functions["p_walk_table"].clauses[code - 151]
    if code >= 100:
        return fr_.functions["p_walk_ring"].clauses[code - 101]
    if code in (98, 99):
        return {98: "walk bound", 99: "memory"}[code]
    return fr_.functions[name].clauses[code - 1]


class FastPackedDriver(_FastSide):
    """``PackedDriver``'s hot-path methods (add, kick_prepare, get_used) over the generated module."""

    def __init__(self, fr_: FastRings, drv: Any, mem: Any):
        np = _np()
        self.fr, self.mem = fr_, mem
        self.arrays = fr_.arrays("pdrv", drv.state)
        self.tabs = fr_.tabs("pdrv", self.arrays)
        lay = drv.layout
        self.cfg = self._arr([lay.desc, lay.driver, lay.device, drv.num, 0, 0, drv.indirect_gpa or 0,
                              drv.indirect_max, 0, 1 if drv.indirect else 0, 0])
        self.px = self._arr([drv.free_head])
        self.next_id, self.last_id = self._arr(list(drv.next_id)), self._arr(list(drv.last_id))
        self.args, self.out = np.zeros(10, np.uint64), np.zeros(4, np.uint64)

    def add(self, out: list, inn: list) -> tuple:
        np = _np()
        segs = list(out) + list(inn)
        sa = self._arr([a for a, _ in segs] or [0])
        sl = self._arr([n for _, n in segs] or [0])
        c = int(self.fr.module.packed_add(*self.tabs, self.args, self.out, self.mem, self.cfg, self.px, self.next_id,
                                          self.last_id, sa, sl, np.uint64(len(out)), np.uint64(len(inn))))
        cl = packed_clause(self.fr, "p_add", c)
        return (cl, None) if cl else (None, int(self.out[0]))

    def kick_prepare(self) -> tuple:
        return None, bool(self.fr.module.packed_kick(*self.tabs, self.args, self.out, self.mem, self.cfg))

    def get_used(self) -> tuple:
        """(clause, (id, len) or None when nothing is used)."""
        c = int(self.fr.module.packed_get(*self.tabs, self.args, self.out, self.mem, self.cfg, self.px, self.next_id,
                                          self.last_id))
        if c == 200:
            return None, None
        cl = packed_clause(self.fr, "p_get_used", c)
        return (cl, None) if cl else (None, (int(self.out[0]), int(self.out[1])))

    @property
    def state(self) -> Any:
        return self.fr.state("pdrv", self.arrays)


class FastPackedDevice(_FastSide):
    """``PackedDevice``'s hot-path methods (pop, push_used, need_notify) over the generated module."""

    def __init__(self, fr_: FastRings, dev: Any, mem: Any):
        np = _np()
        self.fr, self.mem = fr_, mem
        self.arrays = fr_.arrays("pdev", dev.state)
        self.tabs = fr_.tabs("pdev", self.arrays)
        lay = dev.layout
        self.cfg = self._arr([lay.desc, lay.driver, lay.device, dev.num, dev.region[0], dev.region[1], 0, 0,
                              1 if dev.indirect else 0, 0, dev.limit])
        self.wsc = np.zeros(fr_.layouts["pwalk"].nscalars, np.uint64)
        cap = dev.num * (1 + dev.limit) + 1
        self.seg_addr, self.seg_len, self.seg_w = (np.zeros(cap, np.uint64) for _ in range(3))
        self.nseg = np.zeros(1, np.uint64)
        self.args, self.out = np.zeros(10, np.uint64), np.zeros(4, np.uint64)

    def pop(self) -> tuple:
        """(clause, (id, readable, writable, ndesc) or None when nothing is available)."""
        c = int(self.fr.module.packed_pop(*self.tabs, self.wsc, self.args, self.out, self.mem, self.cfg, self.seg_addr,
                                          self.seg_len, self.seg_w, self.nseg))
        if c == 200:
            return None, None
        cl = packed_clause(self.fr, "p_pop", c)
        if cl:
            return cl, None
        k = int(self.nseg[0])
        segs = [(int(self.seg_addr[j]), int(self.seg_len[j]), bool(self.seg_w[j])) for j in range(k)]
        return None, (int(self.out[0]), [(a, n) for a, n, w in segs if not w], [(a, n) for a, n, w in segs if w],
                      int(self.out[1]))

    def push_used(self, id: int, length: int) -> tuple:
        np = _np()
        c = int(self.fr.module.packed_push(*self.tabs, self.args, self.out, self.mem, self.cfg, np.uint64(id & U64),
                                           np.uint64(length & U64)))
        return packed_clause(self.fr, "p_push_used", c), None

    def need_notify(self) -> tuple:
        return None, bool(self.fr.module.packed_need(*self.tabs, self.args, self.out, self.mem, self.cfg))

    @property
    def state(self) -> Any:
        return self.fr.state("pdev", self.arrays)


def packed_round_trips(fr_: FastRings, fd: FastPackedDriver, fv: FastPackedDevice, data: int, seglen: int, n: int,
                       depth: int, copy: int) -> int:
    """``n`` of the bench's packed round trips in one call (``packed_rt``); 0 or the first refusal's code."""
    np = _np()
    cfg = fd.cfg.copy()
    cfg[4], cfg[5], cfg[8], cfg[10] = fv.cfg[4], fv.cfg[5], fv.cfg[8], fv.cfg[10]
    u = np.uint64
    return int(fr_.module.packed_rt(*fd.tabs, *fv.tabs, fv.wsc, fd.args, fd.out, fd.mem, cfg, fd.px, fd.next_id,
                                    fd.last_id, fv.seg_addr, fv.seg_len, fv.seg_w, fv.nseg, u(data), u(seglen), u(n),
                                    u(depth), u(copy), np.zeros(2, np.uint64), np.zeros(2, np.uint64),
                                   np.zeros(max(seglen, 1), np.uint8)))
