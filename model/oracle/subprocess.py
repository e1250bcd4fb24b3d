"""Foreign implementations behind the live interface: a child process speaking JSON lines (``t1virtio-subprocess/1``).

Any language can be checked: the child reads one request per line on stdin and writes one reply per line on
stdout (``docs/oracle.md`` "Checking a C or Rust implementation", schema
``docs/formats/oracle-subprocess.schema.json``). The first request is ``start`` (the trace header, the
component's geometry and, for rings, the shared memory: a file both sides ``mmap(MAP_SHARED)``); then one
request per operation (``seq``, ``op``, ``args`` with every default filled in), answered by ``{"seq", "result"}``
or ``{"seq", "error"}``; finally ``stop``.

``SubprocessImplementation`` is an ``Implementation`` (``step(op, args) -> result``, ``Refused``), and
``factory(argv)`` an ``ImplFactory``, so ``live.check`` and the traces it writes (``oracle check``) work on
a child as on Python code. Reads are bounded (``MAX_REPLY`` bytes a line), every exchange has a deadline
(``timeout``); a child that hangs, dies, or says something that is not a reply is a ``SubprocessError``
(``ChildTimeout``, ``ChildExited``, ``ProtocolError``, ``ChildStartError``), never a hang, never a refusal.
"""
from __future__ import annotations

import json
import mmap
import os
import select
import signal
import subprocess as _sp
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any, Sequence

from t1virtio.oracle import components as comp
from t1virtio.oracle.live import Refused
from t1virtio.oracle.trace import TraceError, one_line, parse_line

PROTOCOL = "t1virtio-subprocess/1"
MAX_REPLY = 1024 * 1024          # one reply line (bytes, newline included)
STDERR_TAIL = 2000               # characters of the child's stderr quoted in an error
REPLY_KEYS = frozenset(("seq", "result", "error", "note"))


class SubprocessError(Exception):
    """The child did not behave as a ``t1virtio-subprocess/1`` peer; ``stderr`` is the tail of its stderr."""

    def __init__(self, message: str, stderr: str = ""):
        super().__init__(message + (f"; child stderr: {one_line(stderr, 400)}" if stderr.strip() else ""))
        self.stderr = stderr


class ChildStartError(SubprocessError):
    """The child could not be started, or refused the ``start`` request (component or sizes unsupported)."""


class ChildTimeout(SubprocessError):
    """The child did not answer within the deadline (it was killed)."""


class ChildExited(SubprocessError):
    """The child exited (or closed stdout) while a reply was due; ``returncode`` is its exit status."""

    def __init__(self, message: str, returncode: int | None, stderr: str = ""):
        super().__init__(message, stderr)
        self.returncode = returncode


class ProtocolError(SubprocessError):
    """A reply line that is not a reply: not JSON, too long, wrong ``seq``, both or neither of result/error,
    an error that is neither a clause id nor an errno-ish name."""


# ------------------------------------------------------------------ what the child is told at start

def geometry(header: dict) -> dict:
    """The component's concrete sizes, so a child need not know the presets (the ``geometry`` of ``start``)."""
    c = header["component"]
    cls = comp.RUNNERS[c]
    r = cls(header)
    if c == "swiotlb":
        P = r.preset
        return {"start": r.start, "nslabs": r.nslabs, "nareas": r.nareas, "segsize": P.io_tlb_segsize,
                "slot_size": 2048, "page_size": P.page_size, "policy": header.get("policy", "v6.1")}
    if c == "msgq":
        s = r.q.state
        return {"depth": s.depth, "max_size": s.max_size}
    lay = r.layout
    g: dict[str, Any] = {"queue_size": r.size, "mem_size": r.mem_size,
                         "event_idx": bool(r.feat.get("event_idx", False)), "region": list(r.region)}
    if c.startswith("split"):
        g["layout"] = {"desc": lay.desc, "avail": lay.avail, "used": lay.used}
    else:
        g["layout"] = {"desc": lay.desc, "driver": lay.driver, "device": lay.device}
    return g


def _full_args(header: dict, op: str, args: dict) -> dict:
    """``args`` checked against the component's table, defaults filled in (absent optionals left out)."""
    cls = comp.RUNNERS[header["component"]]
    spec = cls.OPS.get(op)
    if spec is None:
        raise TraceError(f"{header['component']} has no op {op!r}")
    full = comp.check_args(spec, args, op, cls.max_items)
    out: dict = {}
    for k, v in full.items():
        if v is None:
            continue
        if isinstance(v, (bytes, bytearray)):
            v = bytes(v).hex()
        elif isinstance(v, (list, tuple)):
            v = [[a, d.hex()] if isinstance(d, (bytes, bytearray)) else [a, d] for a, d in v]
        out[k] = v
    return out


# ------------------------------------------------------------------ the child

def _cleanup(proc: _sp.Popen, stdin: Any, files: list) -> None:
    try:
        if proc.poll() is None:
            try:
                stdin.write(b'{"op":"stop"}\n')
                stdin.flush()
            except (OSError, ValueError):
                pass
            try:
                proc.wait(0.5)
            except _sp.TimeoutExpired:
                proc.kill()
                proc.wait(5)
    except Exception:  # noqa: BLE001 - best effort at collection time
        pass
    for f in files:
        try:
            f()
        except Exception:  # noqa: BLE001
            pass


class SubprocessImplementation:
    """One child process implementing ``header['component']`` (see the module docstring).

    ``argv``: the command; ``memory``: the ring bytes the oracle shares (None for swiotlb/msgq); ``timeout``:
    seconds an operation may take (``start_timeout`` for starting); ``env``/``cwd`` for the child.
    The shared memory is a file in a private temporary directory, ``mmap``ed by both sides: the oracle copies
    its view into the file before each request and back after each reply, so the child reads and writes the
    ring bytes in place while it handles a request (and only then).
    """

    def __init__(self, argv: Sequence[str], header: dict, memory: bytearray | None = None, *,
                 timeout: float = 10.0, start_timeout: float = 20.0, env: dict | None = None,
                 cwd: str | os.PathLike | None = None):
        self.argv, self.header, self.memory, self.timeout = list(argv), header, memory, timeout
        self.seq = 0
        self.name = ""
        self._buf = b""
        self._dir = tempfile.TemporaryDirectory(prefix="t1virtio-sub-")
        self._err_path = Path(self._dir.name) / "stderr"
        self._err = open(self._err_path, "wb")
        self._map: mmap.mmap | None = None
        mem_doc = None
        if memory is not None:
            path = Path(self._dir.name) / "memory"
            with open(path, "wb") as f:
                f.write(bytes(memory))
            self._fd = os.open(path, os.O_RDWR)
            self._map = mmap.mmap(self._fd, len(memory), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            mem_doc = {"path": str(path), "size": len(memory)}
        try:
            self.proc = _sp.Popen(self.argv, stdin=_sp.PIPE, stdout=_sp.PIPE, stderr=self._err, cwd=cwd,
                                  env=env, bufsize=0, start_new_session=True)
        except OSError as e:
            self.close()
            raise ChildStartError(f"cannot start {one_line(' '.join(self.argv), 200)}: {e.strerror or e}") from None
        closers = [self._err.close, self._dir.cleanup]
        if self._map is not None:
            closers[:0] = [self._map.close, lambda fd=self._fd: os.close(fd)]
        self._finalizer = weakref.finalize(self, _cleanup, self.proc, self.proc.stdin, closers)
        req = {"protocol": PROTOCOL, "op": "start", "header": header, "geometry": geometry(header), "memory": mem_doc}
        reply = self._exchange(req, start_timeout, "start")
        if "error" in reply:
            self.close()
            raise ChildStartError(f"the child refused to start ({one_line(str(reply['error']), 200)})", self._stderr())
        self.name = str((reply.get("result") or {}).get("name", ""))[:200]

    # -- plumbing
    def _stderr(self) -> str:
        try:
            self._err.flush()
            with open(self._err_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                n = f.tell()
                f.seek(max(0, n - STDERR_TAIL))
                return f.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def _kill(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)     # the child's own session: it and what it started
            except OSError:
                self.proc.kill()
            try:
                self.proc.wait(5)
            except _sp.TimeoutExpired:
                pass

    def _dead(self, what: str) -> ChildExited:
        try:
            rc = self.proc.wait(2)
        except _sp.TimeoutExpired:
            self._kill()
            rc = self.proc.returncode
        return ChildExited(f"{what}: the child exited (status {rc})", rc, self._stderr())

    def _send(self, line: bytes, deadline: float, what: str) -> None:
        fd = self.proc.stdin.fileno()
        view = memoryview(line)
        while view:                                       # bound: each pass writes >= 1 byte or hits the deadline
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                raise ChildTimeout(f"{what}: the child did not read its request within {self.timeout} s", self._stderr())
            _, w, _ = select.select([], [fd], [], left)
            if not w:
                continue
            try:
                n = os.write(fd, view[: 65536])
            except (BrokenPipeError, OSError):
                raise self._dead(what) from None
            view = view[n:]

    def _recv(self, deadline: float, what: str, limit: float) -> bytes:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:                     # bound: MAX_REPLY bytes or the deadline
            if len(self._buf) > MAX_REPLY:
                self._kill()
                raise ProtocolError(f"{what}: a reply line longer than {MAX_REPLY} bytes", self._stderr())
            left = deadline - time.monotonic()
            if left <= 0:
                self._kill()
                raise ChildTimeout(f"{what}: no reply within {limit} s (the child was killed)", self._stderr())
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                raise self._dead(what)
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        if len(line) > MAX_REPLY:
            self._kill()
            raise ProtocolError(f"{what}: a reply line longer than {MAX_REPLY} bytes", self._stderr())
        return line

    def _exchange(self, req: dict, limit: float, what: str) -> dict:
        if self.proc.poll() is not None:
            raise self._dead(what)
        self.seq += 1
        req = {"seq": self.seq, **req}
        deadline = time.monotonic() + limit
        self._send((json.dumps(req, separators=(",", ":")) + "\n").encode(), deadline, what)
        raw = self._recv(deadline, what, limit)
        try:
            text = raw.decode("utf-8")
            doc = parse_line(text, self.seq)
        except (UnicodeDecodeError, TraceError) as e:
            self._kill()
            raise ProtocolError(f"{what}: reply is not a strict JSON object ({one_line(e, 160)}): "
                                f"{one_line(raw.decode('utf-8', 'replace'), 120)!r}", self._stderr()) from None
        bad = doc.keys() - REPLY_KEYS
        if bad or doc.get("seq") != self.seq or (("result" in doc) == ("error" in doc)):
            self._kill()
            raise ProtocolError(f"{what}: not a reply to request {self.seq} (a reply is {{seq, result}} or "
                                f"{{seq, error}}): {one_line(text, 160)!r}", self._stderr())
        if "result" in doc and not isinstance(doc["result"], dict):
            self._kill()
            raise ProtocolError(f"{what}: result must be an object: {one_line(text, 160)!r}", self._stderr())
        if "error" in doc:
            err = doc["error"]
            if not isinstance(err, str) or not 0 < len(err) <= 200 or (what != "start" and comp.kind_of(err) == "unknown"):
                self._kill()
                raise ProtocolError(f"{what}: error {one_line(repr(err), 80)} is neither a clause id nor an errno-ish "
                                    f"name ({', '.join(comp.ERRNO_KINDS)})", self._stderr())
        return doc

    # -- the Implementation interface
    def step(self, op: str, args: dict) -> dict:
        req = {"op": op, "args": _full_args(self.header, op, args)}
        if self._map is not None:
            self._map[:] = bytes(self.memory)
        doc = self._exchange(req, self.timeout, f"step {self.seq + 1} ({op})")
        if self._map is not None:
            self.memory[:] = self._map[:]
        if "error" in doc:
            raise Refused(doc["error"])
        return doc["result"]

    def close(self) -> None:
        """Stop the child (``stop``, then kill after 0.5 s) and remove the shared file."""
        fin = getattr(self, "_finalizer", None)
        if fin is not None:
            fin()
            return
        if getattr(self, "_map", None) is not None:
            self._map.close()
            os.close(self._fd)
        self._err.close()
        self._dir.cleanup()

    def __enter__(self) -> "SubprocessImplementation":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def factory(argv: Sequence[str], **kw: Any):
    """An ``ImplFactory`` starting ``argv`` for every run (``live.check(subprocess.factory([...]), ...)``)."""
    argv = list(argv)
    fatal: list[SubprocessError] = []

    class _Sticky(SubprocessImplementation):
        def step(self, op: str, args: dict) -> dict:
            try:
                return super().step(op, args)
            except SubprocessError as e:
                fatal.append(e)
                raise

    def make(header: dict, memory: bytearray | None = None) -> SubprocessImplementation:
        if fatal:          # a child that hung, died or babbled once fails the run at once (no retry per example)
            e = fatal[0]
            raise e
        try:
            return _Sticky(argv, header, memory, **kw)
        except SubprocessError as e:
            fatal.append(e)
            raise

    make.argv = argv  # type: ignore[attr-defined]
    return make


def record(impl_factory: Any, trace_path: str | os.PathLike, out_path: str | os.PathLike) -> Path:
    """Replay the operations of a trace (e.g. a ``vectors export`` case) on an implementation and write what it
    answered as a new trace (same header; ``peer`` lines are written into the shared memory, not sent), ready
    for ``oracle check``."""
    from t1virtio.oracle.live import memory_for
    from t1virtio.oracle.trace import read_lines, write
    lines = iter(read_lines(trace_path))
    first = next(lines, None)
    if first is None:
        raise TraceError("empty file: no header line")
    header = parse_line(first[1], first[0])
    memory = memory_for(header)
    impl = impl_factory(header, memory)
    steps: list[dict] = []
    try:
        for lineno, text in lines:
            doc = parse_line(text, lineno)
            op, args = doc.get("op"), doc.get("args", {})
            if op == "peer":
                for addr, hx in args.get("writes", []):
                    data = bytes.fromhex(hx)
                    memory[addr: addr + len(data)] = data
                steps.append({"op": op, "args": args})
                continue
            out: dict = {"op": op, "args": args}
            try:
                out["result"] = impl.step(op, dict(args))
            except Refused as e:
                out["error"] = e.error
            steps.append(out)
    finally:
        close = getattr(impl, "close", None)
        if close:
            close()
    return write(out_path, header, steps)
