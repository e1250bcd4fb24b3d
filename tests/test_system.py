"""The whole system: composition, end-to-end scenario, real sizes, hostile peers, scenarios the mutants use."""
import pytest

from t1virtio import errors
from t1virtio.backends.blk import S_IOERR
from t1virtio.system import Config, System, exercise, frontend as fe, scenario


def _run(fn):
    """Run ``fn``; return the clause of a model error it raises, else what it returns."""
    try:
        return fn()
    except errors.ModelError as e:
        return e.clause


# ---- scenarios (return the clause they see broken, None when all is well)

def backend_stays_in_region():
    s = System()
    got = _run(lambda: exercise(s, blocks=2))
    refused = [c for be in s.backends.values() for c in getattr(be, "refused", [])]
    return refused[0] if refused else (got if isinstance(got, str) else None)


def private_never_mapped():
    got = _run(lambda: exercise(System(), blocks=2))
    return got if isinstance(got, str) else None


def buffers_are_bounced():
    return private_never_mapped()


def noninterference():
    def run():
        a, b = System(Config(secret=1, labels=False)), System(Config(secret=2, labels=False))
        for s in (a, b):                 # writes only: what the primary observes, not what the secondary reads
            s.wait(s.secondaries[0].frontends["blk"].write(0, b"public" * 85))
            s.wait(s.secondaries[0].frontends["console"].send(b"public line"))
            s.run()
        return None if a.observation() == b.observation() else "SYSTEM-NI-observation"
    return _run(run)


def blk_refuses_malformed():
    s = System()
    blk = s.secondaries[0].frontends["blk"]
    try:
        r = blk.submit(0, "bad", [fe._hdr(1, 0)], [], {})      # no status byte
        s.run()
    except errors.ModelError as e:
        return e.clause
    except Exception:  # noqa: BLE001 - a crash of the backend is the clause broken
        return "SYSTEM-BLK-request"
    be = s.backends[(1, "blk")]
    return None if be.refused == ["SYSTEM-BLK-request"] and r.done else "SYSTEM-BLK-request"


def blk_reads_back():
    return private_never_mapped()


def blk_status_beyond_capacity():
    s = System(Config(disk_sectors=8))
    blk = s.secondaries[0].frontends["blk"]
    r = s.wait(blk.read(7, 2))
    w = s.wait(blk.write(8, bytes(512)))
    return None if fe.status_of(r) == S_IOERR and fe.status_of(w) == S_IOERR else "SYSTEM-BLK-status"


def streams_arrive():
    return private_never_mapped()


def requests_complete():
    return private_never_mapped()


# ---- tests

def test_scenario_holds():
    r = scenario()
    assert r.ok, r.detail


def test_scenarios_find_nothing():
    for fn in (backend_stays_in_region, private_never_mapped, noninterference, blk_refuses_malformed,
               blk_status_beyond_capacity):
        assert fn() is None, fn.__name__


def test_real_sizes():
    s = System(Config(size="linux", secondaries=2))
    sec = s.secondaries[0]
    assert sec.pool.state.nslabs == 32768 and sec.size >= 64 << 20
    assert sec.frontends["blk"].queues[0].layout.size == 256
    assert exercise(s, blocks=4)["blocks"] == 4


def test_hostile_secondary_descriptor_is_refused_and_others_continue():
    s = System()
    sec = s.secondaries[0]
    blk = sec.frontends["blk"]
    drv = blk.queues[0]
    # secondary 1 hands a descriptor pointing past its region (at another secondary's window offset)
    head = drv.add_buf([(sec.size + 4096, 16)], [(sec.size, 1)], "evil")
    drv.kick()
    s.run()
    assert any(c.startswith("VIRTIO/") or c.startswith("SYSTEM-") for c in s.backends[(1, "blk")].refused) or \
        s.ends[(1, "blk")].backend.ctx.queues[0].broken
    other = s.secondaries[1].frontends["blk"]
    r = s.wait(other.write(0, b"x" * 512))
    assert fe.status_of(r) == 0
    s.check()


def test_out_of_process_blk(tmp_path):
    from t1virtio.system.remote import RemoteBlk
    img = tmp_path / "disk.img"
    img.write_bytes(bytes(64 * 512))
    s = System(Config(remote={1: RemoteBlk(str(img))}))
    try:
        blk = s.secondaries[0].frontends["blk"]
        r = s.wait(blk.write(3, b"R" * 1024))
        assert fe.status_of(r) == 0
        r = s.wait(blk.read(3, 2))
        assert r.inputs[0] == b"R" * 1024
        assert s.backends[(1, "blk")].served >= 2 and s.backends[(1, "blk")].proc.pid
        s.check()
    finally:
        s.close()
    assert img.read_bytes()[3 * 512:5 * 512] == b"R" * 1024


def test_demo_json():
    from t1virtio.backends.cli import run_demo
    res = run_demo(kib=16, quiet=True)
    assert res["ok"], res
    assert res["remote_served"] >= 8 and res["image_holds_data"]


def test_machine_short():
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test
    from t1virtio.machines.system import SystemMachine
    run_state_machine_as_test(SystemMachine, settings=settings(max_examples=10))
