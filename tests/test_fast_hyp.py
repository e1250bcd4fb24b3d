"""The generated message-queue and doorbell fast paths equal the model (issue 12; docs/performance.md).

(a) Hypothesis: random op sequences over every transition, in any order and with hostile words
(calls before activate and after destroy, double binds, EOI with nothing in service, thresholds and
masks out of range, sentinel words, any u64), on the model and the fast path side by side: same
clause, same out, same state words after every step; numba and pure-Python modes at SMALL and LINUX
(msgq depth 255, message size 1023; 64-bit doorbells); (b) payload bytes through ``MessageQueue`` and
``FastMessageQueue``; (c) the bench driver against the model; (d) exhaustive at a tiny preset: every
state reachable from a fresh object in DEPTH steps over a fixed op alphabet, every op from each.
"""
from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from t1virtio import errors
from t1virtio.fast import doorbell as fd
from t1virtio.fast import msgq as fm
from t1virtio.fast.trace import to_arrays
from t1virtio.hyp import doorbell as db
from t1virtio.hyp import msgq as mq
from t1virtio.logic import CONCRETE
from t1virtio.preset import LINUX, SMALL
from t1virtio.step import apply

U = (1 << 64) - 1
MQ, DB = fm.Transitions(mq), fd.Transitions(db)
TINY = replace(SMALL, name="TINY", msgq_max_depth=2, msgq_max_msg_size=2, doorbell_bits=2)
MSGQ_DEPTH, DB_DEPTH = 5, 4          # exhaustive depths (steps from a fresh object)


def _fast(kind, preset, mode):
    return fm.build(preset, MQ, mode) if kind == "msgq" else fd.build(preset, DB, mode)


def _model(kind, preset, name, st_, words):
    """The model's step on register ``words``: (clause, out, new state)."""
    if kind == "msgq":
        fn, args = fm.specs(preset, MQ)[name][0], fm.model_args(name, words)
    else:
        fn, args = fd.specs(preset, DB)[name][0], [w & U for w in words]
    try:
        new, out = apply(fn(CONCRETE, st_, *args))
        return None, out, new
    except errors.ModelError as e:
        return e.clause, None, st_


def _step(kind, fast, obj, name, st_, words):
    """One op on both sides; assert equal; return the model's (clause, out, new state)."""
    clause, out, new = _model(kind, fast.preset, name, st_, words)
    fclause, fout = obj.call(name, words)
    assert fclause == clause, (name, words, clause, fclause)
    assert fout == out, (name, words, out, fout)
    want = to_arrays(fast.layout, new)
    for t, arr in obj.arrays.items():
        assert [int(x) for x in arr] == want[t], (name, words, t)
    return clause, out, new


MSGQ_OPS = (["send"] * 10 + ["receive"] * 7 +     # first: what Hypothesis draws most (simplest)
            ["configure_send", "configure_send", "configure_receive", "configure_receive", "bind_send",
             "bind_receive", "bind_receive", "unbind_send", "unbind_receive", "deliver_send", "deliver_receive",
             "deliver_receive", "eoi_send", "eoi_receive", "eoi_receive", "flush", "configure", "activate", "destroy"])
DB_OPS = (["send"] * 5 + ["receive"] * 4 + ["mask"] * 2 +
          ["bind", "bind", "deliver", "deliver", "eoi", "eoi", "reset", "unbind", "activate", "destroy"])


def _word(data, preset, kind):
    big = preset.msgq_max_depth if kind == "msgq" else (1 << preset.doorbell_bits) - 1
    return data.draw(st.one_of(
        st.integers(0, 4), st.integers(0, big + 2),
        st.sampled_from([U, U - 1, U - 2, big, big + 1, 1 << 63, 32, 1019, 1020, 0xff, 0x100]),
        st.integers(0, U)))


def _msgq_args(data, preset, name, nargs):
    """Hostile words, or (three times in four) words of a call that can be accepted."""
    words = [_word(data, preset, "msgq") for _ in range(nargs)]
    if data.draw(st.integers(0, 3)) == 3:
        return words
    if name == "send":
        words = [data.draw(st.integers(1, preset.msgq_max_msg_size)), data.draw(st.sampled_from([0, 1])), 1]
    elif name == "receive":
        words = [data.draw(st.sampled_from([U, preset.msgq_max_msg_size, words[0]])), 1]
    elif name in ("bind_send", "bind_receive"):
        words[1:] = [1, 1]
    elif name == "configure":
        words = [data.draw(st.integers(1, preset.msgq_max_depth)), data.draw(st.integers(1, preset.msgq_max_msg_size))]
    elif name in ("configure_send", "configure_receive"):
        words = [data.draw(st.sampled_from([U, U - 1, 0, 1, 2, data.draw(st.integers(0, preset.msgq_max_depth))])), U]
    return words


def _db_args(data, preset, name, nargs):
    words = [_word(data, preset, "db") for _ in range(nargs)]
    if name == "bind" and data.draw(st.booleans()):
        words[2:] = [1, 1]
    return words


def _start(data, kind, fast):
    """A fresh object (INIT), or (mostly) a fresh ACTIVE one; a queue of a small depth half the time."""
    p = fast.preset
    if data.draw(st.integers(0, 3)) == 3:
        return fast.layout.template
    if kind == "doorbell":
        return db.Doorbell(p).state
    depth = data.draw(st.one_of(st.integers(1, 3), st.integers(1, p.msgq_max_depth)))
    return mq.MessageQueue(p, depth, data.draw(st.integers(1, p.msgq_max_msg_size))).state


def _run(data, kind, fast, nops):
    st_ = _start(data, kind, fast)
    obj = fd.FastObject(fast, st_)
    ops = MSGQ_OPS if kind == "msgq" else DB_OPS
    for _ in range(nops):
        name = data.draw(st.sampled_from(ops))
        nargs = fast.functions[name].nargs
        words = (_msgq_args if kind == "msgq" else _db_args)(data, fast.preset, name, nargs)
        _, _, st_ = _step(kind, fast, obj, name, st_, words)


CASES = [(k, p, m) for k in ("msgq", "doorbell") for p in (SMALL, LINUX) for m in ("numba", "python")]


@pytest.mark.parametrize("kind,preset,mode", CASES, ids=[f"{k}-{p.name}-{m}" for k, p, m in CASES])
@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(data=st.data())
def test_side_by_side(kind, preset, mode, data):
    _run(data, kind, _fast(kind, preset, mode), 40)


@pytest.mark.parametrize("preset", [SMALL, LINUX], ids=["SMALL", "LINUX"])
@pytest.mark.parametrize("mode", ["numba", "python"])
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
@given(data=st.data())
def test_payload_bytes_match_the_model_queue(preset, mode, data):
    """Send/receive/flush of real bytes through ``MessageQueue`` and ``FastMessageQueue``: same clauses,
    bytes and flags, same state."""
    fast = fm.build(preset, MQ, mode)
    depth = data.draw(st.integers(1, preset.msgq_max_depth))
    size = data.draw(st.integers(1, preset.msgq_max_msg_size))
    model = mq.MessageQueue(preset, depth, size)
    q = fm.FastMessageQueue(fast, model.state)
    for _ in range(60):
        op = data.draw(st.sampled_from(["send"] * 5 + ["receive"] * 4 + ["flush"]))
        if op == "send":
            n = data.draw(st.integers(0, size + 1))
            payload = data.draw(st.binary(min_size=n, max_size=n))
            flags = data.draw(st.sampled_from([0, 1, 2]))
            try:
                want = None, model.send(payload, flags=flags)
            except errors.ModelError as e:
                want = e.clause, None
            assert q.send(payload, flags) == want
        elif op == "receive":
            bufsize = data.draw(st.sampled_from([size, size - 1, preset.msgq_max_msg_size, 0]))
            try:
                want = None, model.receive(bufsize)
            except errors.ModelError as e:
                want = e.clause, None
            assert q.receive(bufsize) == want
        else:
            model.flush()
            assert q.call("flush", []) == (None, None)
        assert q.state == model.state


@pytest.mark.parametrize("mode", ["numba", "python"])
def test_bench_drivers_match_the_model(mode):
    """``pairs`` (the bench's batch driver) leaves the state the model's send/receive loop leaves."""
    import numpy as np
    fast = fm.build(LINUX, MQ, mode)
    model = mq.MessageQueue(LINUX, 255, 240)
    q = fm.FastMessageQueue(fast, model.state)
    data = bytes(range(240))
    for _ in range(300):
        model.send(data)
        assert model.receive()[0] == data
    n = 300
    if mode == "numba":
        src, dst = np.frombuffer(data, np.uint8).copy(), np.zeros(q.stride, np.uint8)
        u = np.uint64
        c = fast.module.pairs(*q.tabs, q.args, q.out, q.payload, u(q.stride), src, dst, u(n), u(240), u(0))
        assert bytes(dst[:240]) == data
    else:
        dst = bytearray(q.stride)
        c = fast.module.pairs(*q.tabs, q.args, q.out, q.payload, q.stride, data, dst, n, 240, 0)
        assert bytes(dst[:240]) == data
    assert c == 0 and q.state == model.state
    dfast = fd.build(LINUX, DB, mode)
    door = db.Doorbell(LINUX)
    obj = fd.FastObject(dfast, door.state)
    for _ in range(n):
        door.send(1 << 63)
        door.receive(1 << 63)
    u = (lambda x: np.uint64(x)) if mode == "numba" else int
    assert dfast.module.pairs(*obj.tabs, obj.args, obj.out, u(n), u(1 << 63)) == 0
    assert obj.state == door.state


def test_run_ops_numba_linux():
    """A long plain-random op sequence at LINUX through ``run_ops`` (one njit call), compared per row."""
    import random

    import numpy as np
    for kind in ("msgq", "doorbell"):
        fast = _fast(kind, LINUX, "numba")
        obj = fd.FastObject(fast, fast.layout.template)
        rnd = random.Random(5)
        names = [n for n in fast.names if n != "slots"]
        rows = []
        for _ in range(2000):
            name = rnd.choice(names)
            words = [rnd.choice([0, 1, 2, 32, 240, 254, 255, 256, 1023, U, U - 1, rnd.randrange(1 << 64)])
                     for _ in range(fast.functions[name].nargs)]
            rows.append([fast.names.index(name)] + words + [0] * (len(obj.args) - len(words)))
        ops = np.array(rows, np.uint64)
        res = np.zeros((len(ops), 1 + len(obj.out)), np.uint64)
        fast.module.run_ops(*obj.tabs, obj.args, obj.out, ops, res)
        st_ = fast.layout.template
        for r, row in enumerate(rows):
            name = fast.names[row[0]]
            f = fast.functions[name]
            clause, out, st_ = _model(kind, LINUX, name, st_, row[1:1 + f.nargs])
            assert fast.clause(name, int(res[r, 0])) == clause, (r, name)
            if clause is None:
                from t1virtio.fast.trace import rebuild_out
                assert rebuild_out(f.out_tree, [int(x) for x in res[r, 1:1 + f.nout]])[0] == out, (r, name)
        assert obj.state == st_


def _msgq_alphabet():
    ops = [("configure", [d, m]) for d in (0, 1, 2, 3) for m in (0, 1, 3)]
    ops += [("activate", []), ("destroy", []), ("flush", [])]
    ops += [("send", [s, f, 1]) for s in (0, 1, 2, 3) for f in (0, 1, 2)] + [("send", [1, 0, 0])]
    ops += [("receive", [b, 1]) for b in (0, 1, 2)] + [("receive", [2, 0])]
    ops += [("configure_send", [t, U]) for t in (U, 0, 1, 2)] + [("configure_send", [0, 0])]
    ops += [("configure_receive", [t, U]) for t in (U, U - 1, 0, 1, 2, 3)] + [("configure_receive", [1, 5])]
    for line in ("send", "receive"):
        ops += [(f"bind_{line}", [32, e, f]) for e, f in ((1, 1), (0, 1), (1, 0))]
        ops += [(f"unbind_{line}", []), (f"deliver_{line}", []), (f"eoi_{line}", [])]
    return ops


def _db_alphabet():
    ops = [("send", [f]) for f in range(5)] + [("receive", [f]) for f in range(5)]
    ops += [("mask", [e, a]) for e in range(4) for a in range(4)] + [("mask", [4, 0])]
    ops += [("bind", [e, 32, 1, 1]) for e in (0, 1)] + [("bind", [0, 32, 0, 1]), ("bind", [0, 32, 1, 0])]
    ops += [("reset", []), ("unbind", []), ("activate", []), ("destroy", []), ("deliver", []), ("eoi", [])]
    return ops


@pytest.mark.parametrize("kind", ["msgq", "doorbell"])
def test_exhaustive_at_a_tiny_preset(kind):
    """Every op sequence of length DEPTH over the alphabet from a fresh object and from each fresh ACTIVE one
    (msgq: a ring of 2, 2-byte messages; doorbell: 2-bit flags), pure-Python mode: the model and the
    generated code agree on every step (states deduplicated)."""
    fast = _fast(kind, TINY, "python")
    ops, depth = (_msgq_alphabet(), MSGQ_DEPTH) if kind == "msgq" else (_db_alphabet(), DB_DEPTH)
    starts = [fast.layout.template]                   # a fresh object, and each fresh ACTIVE one
    if kind == "msgq":
        ops.append(("slots", []))
        starts += [mq.MessageQueue(TINY, d, m).state for d in (1, 2) for m in (1, 2)]
    else:
        starts.append(db.Doorbell(TINY).state)
    frontier = {repr(to_arrays(fast.layout, s)): s for s in starts}
    seen: set = set()
    steps = 0
    for _ in range(depth):
        nxt = {}
        for key, st_ in frontier.items():
            if key in seen:
                continue
            seen.add(key)
            for name, words in ops:
                obj = fd.FastObject(fast, st_)
                if name == "slots":
                    assert obj.call(name, []) == (None, (mq.compute_slot(CONCRETE, st_, st_.count), st_.head))
                    continue
                clause, _, new = _step(kind, fast, obj, name, st_, words)
                steps += 1
                if clause is None:
                    k = repr(to_arrays(fast.layout, new))
                    if k not in seen:
                        nxt[k] = new
        frontier = nxt
    assert len(seen) > 20 and steps > 1000, (len(seen), steps)
    print(f"\nexhaustive {kind}: {len(seen)} states expanded, {depth} steps deep, {steps} steps compared")
