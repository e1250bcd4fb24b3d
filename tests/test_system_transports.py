"""The whole system over the transports of model/transport/ (issue 13): blk round trip, console and net exchange,
isolation and noninterference, the demo, refusals."""
import pytest

from t1virtio import errors
from t1virtio.system import Config, System, exercise, frontend as fe, mac_of
from t1virtio.system.adapters import REFUSED, TRANSPORTS

WORKING = [t for t in TRANSPORTS if t not in REFUSED]


def test_the_seeds_transport_and_more_work():
    assert "mmio-msgq" in WORKING and len(WORKING) >= 3


@pytest.mark.parametrize("transport", WORKING)
def test_round_trip_and_exchange(transport):
    s = System(Config(transport=transport))
    facts = exercise(s, blocks=4)
    assert facts == {"blocks": 4, "console": 1, "net": 1}
    s1, s2 = s.secondaries
    r = s.wait(s2.frontends["console"].send(b"back\n"))
    s.run()
    assert s1.frontends["console"].received[-1:] == [b"back\n"] and fe.status_of(r) is None
    s.wait(s2.frontends["net"].send_to(mac_of(1), b"pong"))
    s.run()
    assert s1.frontends["net"].received[-1][14:] == b"pong"
    assert s.wait(s2.frontends["rng"].request(16)).length == 16
    s.check()
    for key, end in s.ends.items():
        assert not end.broken and end.live, key
    if transport != "shm":
        assert not s.ends[(1, "blk")].refusals
        assert all(getattr(end, "back", None) is None or not end.back.refusals for end in s.ends.values())


@pytest.mark.parametrize("transport", ["mmio-msgq", "msg"])
def test_carriers_are_the_systems_hypervisor_objects(transport):
    s = System(Config(transport=transport))
    s.run()                                      # the primary takes every queued message (virtio-msg: EVENT_AVAIL)
    for (v, name), c in s.carriers.items():
        reqs = c["requests"]
        assert reqs.vic is s.vics[0] and reqs.state.rx.bound          # received by the primary
        back = c.get("replies") or c.get("responses")
        assert back.vic is s.vics[v] and back.state.rx.bound          # received by secondary v
        assert reqs.state.sent > 0 and reqs.state.sent == reqs.state.received
    if transport == "mmio-msgq":
        assert s.bells[(1, "blk")] == (s.carriers[(1, "blk")]["notify"], s.carriers[(1, "blk")]["interrupt"])


@pytest.mark.parametrize("transport", WORKING)
def test_noninterference(transport):
    a, b = System(Config(secret=1, transport=transport)), System(Config(secret=2, transport=transport))
    for s in (a, b):
        exercise(s, blocks=2)
    assert a.observation() == b.observation()


@pytest.mark.parametrize("transport", ["mmio-msgq", "emulated"])
def test_isolation_window_still_checked(transport):
    """A backend following an address outside its region is refused by its context, under any transport."""
    s = System(Config(transport=transport))
    sec = s.secondaries[0]
    drv = sec.frontends["blk"].queues[0]
    drv.add_buf([(sec.size + 4096, 16)], [(sec.size, 1)], "evil")
    drv.kick()
    s.run()
    assert s.backends[(1, "blk")].refused or s.ends[(1, "blk")].backend.ctx.queues[0].broken
    r = s.wait(s.secondaries[1].frontends["blk"].write(0, b"x" * 512))
    assert fe.status_of(r) == 0
    s.check()


def test_forged_reply_breaks_only_that_device():
    s = System(Config(transport="mmio-msgq"))
    c = s.carriers[(1, "blk")]
    c["replies"].send(b"\x01\x81" + bytes(10))      # a reply nobody asked for
    c["interrupt"].send(1)
    s.step()
    assert s.secondaries[0].frontends["blk"].broken
    r = s.wait(s.secondaries[1].frontends["blk"].write(0, b"y" * 512))
    assert fe.status_of(r) == 0
    s.check()


@pytest.mark.parametrize("name", ["ivshmem", "nope"])
def test_refused_with_a_reason(name):
    with pytest.raises(ValueError, match=name):
        Config(transport=name)


@pytest.mark.parametrize("transport", ["mmio-msgq", "msg"])
def test_demo_over_transport(transport):
    from t1virtio.backends.cli import run_demo
    res = run_demo(kib=8, quiet=True, transport=transport)
    assert res["ok"], res
    assert res["transport"] == transport and res["carried_by"] and res["transport_messages"] > 0
    assert res["remote_served"] >= 4 and res["image_holds_data"]


def test_demo_refuses_ivshmem_cli():
    from typer.testing import CliRunner
    from t1virtio.cli import app
    r = CliRunner().invoke(app, ["demo", "--transport", "ivshmem"])
    assert r.exit_code != 0 and "ivshmem" in str(r.exception or r.output)


def test_machine_short_each_transport():
    from hypothesis import settings
    from hypothesis.stateful import run_state_machine_as_test
    from t1virtio.machines.system import SystemMachine
    run_state_machine_as_test(SystemMachine, settings=settings(max_examples=12, deadline=None))
