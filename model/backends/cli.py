"""Commands of the whole system (``t1virtio demo``, ``t1virtio backend ...``)."""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Optional

import typer

backend_app = typer.Typer(help="Run a virtio backend as its own OS process (spawned by the demo).",
                          no_args_is_help=True)


@backend_app.command("blk")
def backend_blk(image: str = typer.Option(..., "--image", help="disk image file (whole 512-byte sectors)"),
                shm: str = typer.Option(..., "--shm", help="name of the shared-memory segment holding the region"),
                size: int = typer.Option(..., "--size", help="bytes of the region"),
                block: int = typer.Option(0, "--block", help="region offset of the device's register block"),
                width: int = typer.Option(8, "--width", help="doorbell width in bits"),
                qmax: int = typer.Option(256, "--qmax", help="largest queue size the device accepts"),
                fd: int = typer.Option(..., "--fd", help="inherited socket carrying doorbell flags"),
                as_json: bool = typer.Option(False, "--json", help="when done, print {pid, served} as JSON on stdout")) -> None:
    """virtio-blk over IMAGE in its own process: the region in real shared memory, notifications over a socket."""
    from t1virtio.system import remote
    n = remote.serve(image, shm, size, block, width, qmax, fd)
    if as_json:
        print(json.dumps({"backend": "blk", "pid": os.getpid(), "served": n}))
    print(f"backend blk (pid {os.getpid()}): served {n} requests", file=sys.stderr)


class _Progress:
    """rich progress on a terminal; a plain line every few seconds otherwise."""

    def __init__(self, total: int, label: str, quiet: bool):
        self.total, self.label, self.quiet, self.done, self.t = total, label, quiet, 0, time.monotonic()
        self.bar = None
        if not quiet and sys.stdout.isatty():
            from rich.progress import Progress
            self.bar = Progress(transient=True)
            self.bar.start()
            self.task = self.bar.add_task(label, total=total)

    def advance(self, k: int = 1) -> None:
        self.done += k
        if self.bar is not None:
            self.bar.update(self.task, advance=k)
        elif not self.quiet and time.monotonic() - self.t > 3:
            print(f"  {self.label}: {self.done}/{self.total}", flush=True)
            self.t = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def run_demo(size: str = "small", kib: int = 64, remote: bool = True, file: Optional[str] = None,
             quiet: bool = False, transport: str = "mmio-msgq") -> dict:
    """The demo as data (the command prints it): see docs/system.md."""
    from t1virtio import errors
    from t1virtio.system import Config, System, frontend as fe, mac_of
    from t1virtio.system.adapters import CARRIES
    from t1virtio.system.remote import RemoteBlk
    say = (lambda *a: None) if quiet else print
    payload = open(file, "rb").read() if file else bytes((i * 7 + i // 512) & 0xFF for i in range(kib * 1024))
    chunk = 4096
    payload += bytes(-len(payload) % 512)
    sectors = max(2048, len(payload) // 512 + 8)
    tmp = tempfile.NamedTemporaryFile(prefix="t1virtio-disk-", suffix=".img", delete=False)
    tmp.write(bytes(sectors * 512))
    tmp.close()
    out: dict = {"size": size, "bytes": len(payload), "remote_blk": remote, "transport": transport,
                 "carried_by": CARRIES.get(transport), "checks": []}
    cfg = Config(size=size, disk_sectors=sectors, remote={1: RemoteBlk(tmp.name)} if remote else {},
                 transport=transport)
    t0 = time.perf_counter()
    system = System(cfg)
    try:
        s1, s2 = system.secondaries[0], system.secondaries[1]
        P = cfg.pool_preset
        say(f"booted: hypervisor, primary, 2 secondaries; each region {s1.size >> 10} KiB holding a "
            f"{P.pool_nslabs}-slot swiotlb pool, queues of {P.queue_size}; devices blk, console, net, rng")
        say(f"transport {transport}: {CARRIES[transport]}")
        if remote:
            how = "doorbells carried on a socket" if transport == "shm" else \
                "the primary serves the transport and sends the process the queues and kicks on a socket"
            say(f"secondary 1's virtio-blk is served by a separate process (pid {cfg.remote[1].proc.pid}) over "
                f"shared memory {cfg.remote[1].shm.name}, {how}")
        blk = s1.frontends["blk"]
        n = len(payload) // chunk + (1 if len(payload) % chunk else 0)
        bar = _Progress(2 * n, "blk write + read back", quiet)
        for k in range(n):
            part = payload[k * chunk:(k + 1) * chunk]
            r = system.wait(blk.write(k * chunk // 512, part))
            if fe.status_of(r) != 0:
                raise errors.InvariantViolation("SYSTEM-BLK-status", f"write {k}: status {fe.status_of(r)}")
            system.check()
            bar.advance()
        back = []
        for k in range(n):
            part = payload[k * chunk:(k + 1) * chunk]
            r = system.wait(blk.read(k * chunk // 512, len(part) // 512))
            back.append(r.inputs[0])
            system.check()
            bar.advance()
        bar.close()
        system.wait(blk.flush())
        ok = b"".join(back) == payload
        if not ok:
            raise errors.InvariantViolation("SYSTEM-BLK-data", "the file read back differs")
        ident = system.wait(blk.get_id()).inputs[0].rstrip(b"\0").decode()
        say(f"secondary 1 wrote {len(payload)} bytes ({n} requests of {chunk} bytes) to virtio-blk and read them "
            f"back identical; device id {ident!r}")
        be = system.backends[(1, "blk")]
        if remote:
            on_disk = open(tmp.name, "rb").read(len(payload)) == payload
            say(f"  the out-of-process backend served {be.served} requests ({len(be.log)} logged: "
                f"{sum(1 for x in be.log if x[0] == 'write')} writes, {sum(1 for x in be.log if x[0] == 'read')} reads); "
                f"the image file holds the data: {on_disk}")
            out["remote_served"], out["image_holds_data"] = be.served, on_disk
        lines = [b"hello secondary 2, this is secondary 1\n", b"second line\n"]
        for ln in lines:
            system.wait(s1.frontends["console"].send(ln))
        system.run()
        system.wait(s2.frontends["console"].send(b"hello back from secondary 2\n"))
        system.run()
        got_console = s2.frontends["console"].received[-2:] == lines and \
            s1.frontends["console"].received[-1:] == [b"hello back from secondary 2\n"]
        say(f"console: {len(lines)} lines 1 -> 2 and one 2 -> 1 through the primary's hub: {got_console}")
        for i in range(4):
            system.wait(s1.frontends["net"].send_to(mac_of(2), f"ping {i}".encode()))
            system.run()
            system.wait(s2.frontends["net"].send_to(mac_of(1), f"pong {i}".encode()))
            system.run()
        pings = [f[14:] for f in s2.frontends["net"].received]
        pongs = [f[14:] for f in s1.frontends["net"].received]
        got_net = pings == [f"ping {i}".encode() for i in range(4)] and pongs == [f"pong {i}".encode() for i in range(4)]
        say(f"net: 4 pings 1 -> 2 and 4 pongs 2 -> 1 (virtio-net header + ethernet frame) bridged: {got_net}")
        rng = system.wait(s2.frontends["rng"].request(32))
        say(f"rng: secondary 2 got {rng.length} bytes of entropy")
        if not (got_console and got_net):
            raise errors.InvariantViolation("SYSTEM-STREAM-data", "console or net exchange incomplete")
        system.check()
        checks = [("SYSTEM-BLK-data", "the file read back equals what was written"),
                  ("SYSTEM-STREAM-data", "console lines and packets arrived whole and in order"),
                  ("SYSTEM-ISOLATION-window", f"{sum(m.accesses for m in system.window_monitors.values())} backend "
                                              f"accesses, each inside its secondary's window"),
                  ("SYSTEM-ISOLATION-private", "no private page of a secondary is mapped in the primary"),
                  ("SYSTEM-BOUNCE-pool", "every buffer handed to a device was a live mapping of the pool"),
                  ("SWIOTLB-BOUNCE-no-export", "the regions hold only exported, device or coherent bytes"),
                  ("SWIOTLB-BOUNCE-no-stale", "no caller buffer received a stale byte")]
        msgs = sum(c.state.sent for cs in system.carriers.values() for c in cs.values() if hasattr(c, "payloads"))
        if msgs:
            checks.append(("TRANSPORT-one-in-flight", f"{msgs} transport messages between the secondaries and the "
                                                      f"primary over the hypervisor's message queues, each answered "
                                                      f"in order"))
        out["transport_messages"] = msgs
        out["checks"] = [{"clause": c, "held": True, "detail": d} for c, d in checks]
        out["ok"] = True
    except errors.ModelError as e:
        out["ok"], out["error"] = False, f"{e.clause}: {e}"
    finally:
        system.close()
        os.unlink(tmp.name)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def register(app: typer.Typer) -> None:
    """Add the system's commands to the ``t1virtio`` app."""
    app.add_typer(backend_app, name="backend")

    @app.command()
    def demo(size: str = typer.Option("small", "--size", help="small | linux (64 MiB pools, 256-entry queues)"),
             kib: int = typer.Option(64, "--kib", help="size of the generated file to write and read back"),
             file: Optional[str] = typer.Option(None, "--file", help="write this file instead"),
             remote: bool = typer.Option(True, "--remote/--in-process", help="serve blk from its own process"),
             transport: str = typer.Option("mmio-msgq", "--transport",
                                           help="what carries the registers: mmio-msgq (the seed's), emulated, msg, "
                                                "shm (ivshmem: refused)"),
             as_json: bool = typer.Option(False, "--json")) -> None:
        """The whole system: blk write/read-back, console lines and packets between two secondaries via the primary."""
        from t1virtio.commands import Failure
        from t1virtio.system.adapters import check_transport
        try:
            check_transport(transport)
        except ValueError as e:
            raise Failure(str(e), 2) from None
        res = run_demo(size, kib, remote, file, quiet=as_json, transport=transport)
        if as_json:
            print(json.dumps(res, indent=1))
        else:
            if res["ok"]:
                print(f"checks that held ({res['seconds']} s):")
                for c in res["checks"]:
                    print(f"  {c['clause']}: {c['detail']}")
            else:
                print(f"FAILED: {res['error']}")
        if not res["ok"]:
            from t1virtio.commands import Failure
            raise Failure(f"the demo failed: {res['error']}")
