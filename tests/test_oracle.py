"""The conformance oracle: the model conforms, buggy implementations are caught (trace and live), legal
choices that differ from the model's are not flagged, bad input exits 2 with one line."""
import json
import subprocess
import sys
import time

import pytest

from t1virtio.hyp.memview import read_le
from t1virtio.oracle import live
from t1virtio.oracle.check import check_file, check_trace
from t1virtio.oracle.live import ModelImplementation, Refused
from t1virtio.virtio import packed as pk

SWIOTLB_BASE = 0x8000_0000
from pathlib import Path as _P
CLI = str(_P(sys.executable).parent / "t1virtio")


class SegmentCrossingPool:
    """First-fit over slots, ignoring segment boundaries."""

    def __init__(self, header, memory=None):
        self.used, self.maps = set(), {}

    def step(self, op, a):
        if op == "map":
            n = max(1, -(-a["mapping_size"] // 2048))
            for i in range(16 - n + 1):
                if n >= 2 and i % 2:                # page aligned for >= a page (legal), segments ignored (the bug)
                    continue
                if not any(i + k in self.used for k in range(n)):
                    self.used.update(range(i, i + n))
                    self.maps[SWIOTLB_BASE + 2048 * i] = (i, n)
                    return {"tlb_addr": SWIOTLB_BASE + 2048 * i, "slot": i}
            raise Refused("ENOMEM")
        if op == "release":
            if a["tlb_addr"] not in self.maps:
                raise Refused("EINVAL")
            i, n = self.maps.pop(a["tlb_addr"])
            self.used.difference_update(range(i, i + n))
            return {"nslots": n}
        raise Refused("ENOMEM")


class DoubleSlotPool(SegmentCrossingPool):
    """Hands out slot 0 every time."""

    def step(self, op, a):
        if op == "map":
            return {"tlb_addr": SWIOTLB_BASE, "slot": 0}
        raise Refused("EINVAL")


class LastFitPool(SegmentCrossingPool):
    """A legal allocator with another choice than Linux's: the last free run inside one segment."""

    def step(self, op, a):
        if op == "map":
            n = max(1, -(-a["mapping_size"] // 2048))
            if n > 8:
                raise Refused("EINVAL")
            for i in range(16 - n, -1, -1):
                if i // 8 != (i + n - 1) // 8 or (n >= 2 and i % 2):
                    continue
                if not any(i + k in self.used for k in range(n)):
                    self.used.update(range(i, i + n))
                    self.maps[SWIOTLB_BASE + 2048 * i] = (i, n)
                    return {"tlb_addr": SWIOTLB_BASE + 2048 * i, "slot": i}
            raise Refused("ENOMEM")
        return super().step(op, a)


class Wrapped(ModelImplementation):
    """The model, with one behaviour replaced by ``patch(op, args) -> result | None``."""

    def step(self, op, a):
        r = self.patch(op, a)
        return r if r is not None else ModelImplementation.step(self, op, a)

    def patch(self, op, a):
        return None


class DeviceHeadUnchecked(Wrapped):
    """A split device that accepts an available head >= queue size."""

    def patch(self, op, a):
        if op == "pop_avail":
            r = self.runner
            s = r.obj.state
            head = read_le(r.mem, r.layout.avail_ring_at(s.last_avail % r.size), 2)
            if head >= r.size and read_le(r.mem, r.layout.avail + 2, 2) != s.last_avail:
                r.obj.state = r.obj.state.__class__(**{**{f: getattr(s, f) for f in s.__dataclass_fields__},
                                                       "last_avail": (s.last_avail + 1) & 0xFFFF})
                return {"head": head}
        return None


class DriverIdUnchecked(Wrapped):
    """A split driver that takes back a used id that is not in flight."""

    def patch(self, op, a):
        if op == "get_used":
            try:
                return ModelImplementation.step(self, op, a)
            except Refused as e:
                if e.error != "VIRTIO/model/used#id":
                    raise
                r = self.runner
                r.obj.broken = None
                s = r.obj.state
                i, n = read_le(r.mem, r.layout.used_elem_at(s.last_used % r.size), 4), 0
                return {"id": i, "len": read_le(r.mem, r.layout.used_elem_at(s.last_used % r.size) + 4, 4)}
        return None


class DriverLenUnchecked(Wrapped):
    """A split driver that accepts a used len above the buffer's writable bytes."""

    def patch(self, op, a):
        if op == "get_used":
            try:
                return ModelImplementation.step(self, op, a)
            except Refused as e:
                if e.error != "VIRTIO/device/Virtqueues/The Virtqueue Used Ring#len":
                    raise
                r = self.runner
                r.obj.broken = None
                s = r.obj.state
                at = r.layout.used_elem_at(s.last_used % r.size)
                return {"id": read_le(r.mem, at, 4), "len": read_le(r.mem, at + 4, 4)}
        return None


class DeviceLenUnchecked(Wrapped):
    """A split device that publishes a used len above the buffer's writable bytes."""

    def patch(self, op, a):
        if op == "add_used":
            try:
                return ModelImplementation.step(self, op, a)
            except Refused as e:
                if e.error != "VIRTIO/model/device#used-len":
                    raise
                return {}
        return None


class PackedWrapIgnored(Wrapped):
    """A packed driver that reads a descriptor as used from its AVAIL/USED bits being equal, ignoring the wrap counter."""

    def patch(self, op, a):
        if op == "get_used":
            try:
                return ModelImplementation.step(self, op, a)
            except Refused as e:
                r = self.runner
                s = r.obj.state
                raw = pk.read_desc(r.mem, r.layout.desc + pk.DESC_SIZE * s.last_used)
                av, us = bool(raw.flags & pk.VIRTQ_DESC_F_AVAIL), bool(raw.flags & pk.VIRTQ_DESC_F_USED)
                if av == us and raw.id < r.size and s.ndesc[raw.id]:
                    return {"id": raw.id, "len": raw.len if raw.flags & pk.VIRTQ_DESC_F_WRITE else 0}
                raise
        return None


class LifoQueue(Wrapped):
    """A message queue that returns the newest message first."""

    def __init__(self, header, memory=None):
        super().__init__(header, memory)
        self.msgs = []

    def patch(self, op, a):
        if op == "send":
            r = ModelImplementation.step(self, op, a)
            self.msgs.append(a["hex"])
            return r
        if op == "receive" and len(self.msgs) >= 2:
            ModelImplementation.step(self, op, a)
            self.msgs.pop(0)
            m = self.msgs.pop()
            self.msgs.insert(0, m)
            return {"hex": m, "not_empty": bool(self.msgs)}
        if op == "receive" and self.msgs:
            self.msgs.pop(0)
        if op == "flush":
            self.msgs.clear()
        return None


class OversizeQueue(Wrapped):
    """A message queue that accepts a message longer than max_size (and drops it)."""

    def patch(self, op, a):
        if op == "send" and len(a["hex"]) // 2 > self.runner.q.state.max_size:
            return {"not_full": True}
        return None


BUGGY = [  # (implementation, component, clause it must be caught with)
    (SegmentCrossingPool, "swiotlb", "SWIOTLB-find-rule"),
    (DoubleSlotPool, "swiotlb", "SWIOTLB-find-rule"),
    (DeviceHeadUnchecked, "split_device", "VIRTIO/model/avail#head-range"),
    (DriverIdUnchecked, "split_driver", "VIRTIO/model/used#id"),
    (DriverLenUnchecked, "split_driver", "VIRTIO/device/Virtqueues/The Virtqueue Used Ring#len"),
    (DeviceLenUnchecked, "split_device", "VIRTIO/model/device#used-len"),
    (PackedWrapIgnored, "packed_driver", "VIRTIO/device/Packed Virtqueues/The Virtqueue Descriptor Table#used-flags"),
    (LifoQueue, "msgq", "HYP-MSGQ-receive-rule"),
    (OversizeQueue, "msgq", "HYP-MSGQ-size"),
]


@pytest.mark.parametrize("component", list(live.ACTIONS))
def test_model_conforms_live(component):
    r = live.check(live.model_factory, component, max_examples=15, max_steps=20)
    assert r.examples >= 15


@pytest.mark.parametrize("impl,component,clause", BUGGY, ids=[b[0].__name__ for b in BUGGY])
def test_buggy_caught_live_and_by_trace(impl, component, clause, tmp_path):
    path = tmp_path / "min.trace.jsonl"
    with pytest.raises(live.NonConformance) as ei:
        live.check(impl, component, max_examples=300 if component == "split_driver" else 80, max_steps=20 if component == "packed_driver" else 12, trace_path=path)
    assert ei.value.violation.clause == clause, ei.value
    rep = check_file(path)                         # the written minimal trace, checked from the file
    assert not rep.ok and rep.violation.clause == clause
    assert len(ei.value.steps) <= 12               # shrunk
    out = subprocess.run([CLI, "oracle", "check", str(path), "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["violation"]["clause"] == clause


def test_must_not_flag_other_free_slot():
    h = live.header_for("swiotlb", "small")
    with pytest.raises(live.NonConformance) as ei:   # exact mode flags the other choice ...
        live.check(LastFitPool, "swiotlb", mode="exact", max_examples=50, header=h)
    assert ei.value.violation.clause == "MODEL-reference-agrees"
    live.check(LastFitPool, "swiotlb", max_examples=100, header=h)   # ... legality mode never does


def test_must_not_flag_out_of_order_completion(tmp_path):
    r = live.check(live.model_factory, "split_device", max_examples=40)   # generated add_used picks any held head
    assert r.steps > 0
    h = live.header_for("split_device", "small")
    s = live.Session(live.model_factory, h, "legality")
    for x in range(3):
        live._act_split_device(s, (3, x, 10))
    for _ in range(3):
        assert s.call("pop_avail", {})
    for head in (2, 0, 1):                         # reverse-ish order: legal without IN_ORDER (§2.7)
        assert s.call("add_used", {"id": head, "len": 1}), s.violation
    p = tmp_path / "ooo.jsonl"
    from t1virtio.oracle.trace import write
    write(p, h, s.steps)
    assert check_file(p, "legality").ok and check_file(p, "exact").ok


BAD = {
    "truncated": '{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah"}\n{"op":"flu',
    "version": '{"format":"t1virtio-trace/9","component":"msgq","sizes":"small","policy":"gunyah"}\n',
    "unknown-op": '{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah"}\n{"op":"explode"}\n',
    "huge-int": '{"format":"t1virtio-trace/1","component":"swiotlb","sizes":"small","policy":"v6.1"}\n'
                '{"op":"map","args":{"orig_addr":' + "9" * 5000 + ',"mapping_size":1},"result":{"tlb_addr":0}}\n',
    "out-of-range": '{"format":"t1virtio-trace/1","component":"swiotlb","sizes":"small","policy":"v6.1"}\n'
                    '{"op":"map","args":{"orig_addr":-1,"mapping_size":1},"result":{"tlb_addr":0}}\n',
    "not-json": "hello\n",
    "empty": "",
    "bad-component": '{"format":"t1virtio-trace/1","component":"gpu","sizes":"small","policy":"x"}\n',
    "nan": '{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah","note":NaN}\n',
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_exit_2_one_line(name, tmp_path):
    p = tmp_path / f"{name}.jsonl"
    p.write_text(BAD[name])
    out = subprocess.run([CLI, "oracle", "check", str(p)], capture_output=True, text=True)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert len(out.stderr.strip().splitlines()) == 1 and "Traceback" not in out.stderr, out.stderr


def test_huge_line_exit_2(tmp_path):
    p = tmp_path / "huge.jsonl"
    with open(p, "w") as f:
        f.write('{"format":"t1virtio-trace/1","component":"msgq","sizes":"small","policy":"gunyah"}\n')
        f.write('{"op":"flush","note":"' + "x" * (2 * 1024 * 1024) + '"}\n')
    out = subprocess.run([CLI, "oracle", "check", str(p)], capture_output=True, text=True)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1


def test_schema_validates_traces(tmp_path):
    import jsonschema
    from t1virtio.oracle.trace import schema_path
    sch = json.loads(schema_path().read_text())
    jsonschema.Draft202012Validator.check_schema(sch)
    from t1virtio.oracle import vectors
    vectors.export(tmp_path, components=["swiotlb", "split_driver", "msgq"], count=1)
    for f in sorted(tmp_path.glob("*/*.trace.jsonl")):
        for line in f.read_text().splitlines():
            jsonschema.validate(json.loads(line), sch)


def test_vectors_deterministic_and_replay(tmp_path):
    from t1virtio.oracle import vectors
    a = vectors.export(tmp_path / "a", count=1)
    vectors.export(tmp_path / "b", count=1)
    for f in sorted((tmp_path / "a").rglob("*.jsonl")):
        assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()
        assert check_file(f, "exact").ok, f
    assert (tmp_path / "a" / "README.md").read_text().count("Not covered") == 1
    assert a["cases"] == 6 * 9


def test_exact_speed_at_real_sizes(tmp_path):
    """Exact mode at Linux sizes: map/release on a 32768-slot pool (figure printed with -s)."""
    h = {"format": "t1virtio-trace/1", "component": "swiotlb", "sizes": "linux", "policy": "v6.1", "mode": "exact"}
    impl = ModelImplementation(h)
    steps, live_addrs = [], []
    for i in range(3000):
        if i % 3 == 2:
            a = {"tlb_addr": live_addrs.pop(0)}
            steps.append({"op": "release", "args": a, "result": impl.step("release", a)})
        else:
            a = {"orig_addr": 0x10000 + 0x800 * i, "mapping_size": 1 + (i * 997) % 6000}
            r = impl.step("map", a)
            live_addrs.append(r["tlb_addr"])
            steps.append({"op": "map", "args": a, "result": r})
    p = tmp_path / "real.jsonl"
    from t1virtio.oracle.trace import write
    write(p, h, steps)
    t0 = time.perf_counter()
    rep = check_file(p)
    rate = rep.steps / (time.perf_counter() - t0)
    print(f"exact mode, 32768-slot pool: {rate:,.0f} steps/s")
    assert rep.ok and rep.steps == 3000


def test_pytest_plugin_fixture_and_entry_point(tmp_path):
    from t1virtio.oracle.pytest_plugin import OracleFixture
    fx = OracleFixture(tmp_path, 10)
    assert fx.check(live.model_factory, "msgq").examples >= 10
    with pytest.raises(live.NonConformance) as ei:
        fx.check(OversizeQueue, "msgq", max_examples=100)
    assert ei.value.path and ei.value.path.exists()
    import tomllib
    from pathlib import Path
    doc = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert doc["project"]["entry-points"]["pytest11"]["t1virtio"] == "t1virtio.oracle.pytest_plugin"
