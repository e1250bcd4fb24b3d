"""``vectors export``: a deterministic, seeded corpus of conformance cases (format ``t1virtio-vectors/1``).

Each case is a trace file (``t1virtio-trace/1``, ``docs/formats/trace.schema.json``) written from the model in
exact mode: the header (component, sizes, policy, starting state), one line per operation with the model's
result or refusal clause, and the post-state as the last step's ``observe``. A harness in any language replays
a case by building its implementation from the header, applying each line's operation (``peer`` lines are raw
writes into the ring memory) and comparing its result or error, then the observations (README.md in the
corpus explains it). The cases come from seeded action sequences of ``live`` (the model playing both sides,
hostile writes included), so refusals (failing cases) and acceptances (passing cases) both appear; ``index.json``
lists, per case, the clauses its refusals cite.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

from t1virtio.oracle import components as comp
from t1virtio.oracle import live
from t1virtio.oracle.trace import VECTORS_FORMAT, TraceError, schema_path, write
from t1virtio.specs import clauses

OPS_CLAUSE_PREFIX = {"swiotlb": ("SWIOTLB-find", "SWIOTLB-map", "SWIOTLB-release"), "msgq": ("HYP-MSGQ-",),
                     "split_driver": ("VIRTIO/model/used#", "VIRTIO/model/driver#"),
                     "split_device": ("VIRTIO/model/avail#", "VIRTIO/model/device#", "VIRTIO/model/chain#"),
                     "packed_driver": ("VIRTIO/model/packed/driver#", "VIRTIO/model/packed/ids#used"),
                     "packed_device": ("VIRTIO/model/packed/device#", "VIRTIO/model/packed/ids#id")}


def _case(component: str, rng: random.Random, n_ops: int) -> tuple[dict, list[dict]]:
    h = live.header_for(component, "small")
    h["mode"] = "exact"
    _, kinds = live.ACTIONS[component]
    acts = [(rng.randrange(kinds), rng.randrange(1 << 16), rng.randrange(1 << 16)) for _ in range(n_ops)]
    s = live.run_actions(live.model_factory, h, acts, "exact")
    steps = s.steps
    if steps and s.violation is None:
        obs = s.checker.runner.observe(s.checker.runner.OBSERVE)
        if obs:
            steps[-1] = dict(steps[-1], observe=obs)
    return h, steps


def export(out_dir: str | Path, components: list[str] | None = None, count: int = 4, seed: int = 0) -> dict:
    """Write the corpus; return a summary (cases, components, clauses covered, unreachable/uncovered)."""
    comps = components or list(live.ACTIONS)
    for c in comps:
        if c not in live.ACTIONS:
            raise TraceError(f"unknown component {c!r} (known: {', '.join(live.ACTIONS)})")
    if not 0 <= count <= 10_000:
        raise TraceError("--count must be in [0, 10000]")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    index: list[dict] = []
    covered: dict[str, set] = {c: set() for c in comps}
    passing: dict[str, int] = {c: 0 for c in comps}
    for c in comps:
        rng = random.Random(f"{seed}:{c}")
        for k in range(count + 8):                    # bound: count cases plus 8 longer hostile ones
            h, steps = _case(c, rng, 12 if k < count else 40)
            name = f"{c}/{k:04d}.trace.jsonl"
            write(out / name, h, steps)
            refused = sorted({s["error"] for s in steps if "error" in s})
            covered[c].update(refused)
            passing[c] += sum(1 for s in steps if "result" in s and s["op"] != "peer")
            index.append({"case": name, "component": c, "steps": len(steps), "refusals": refused})
    shutil.copy(schema_path(), out / "trace.schema.json")
    uncovered = {}
    for c in comps:
        pre = OPS_CLAUSE_PREFIX[c]
        cands = sorted(cid for cid, cl in clauses.CLAUSES.items()
                       if cid.startswith(pre) and cl.kind in ("peer", "caller", "exhausted", "access"))
        uncovered[c] = [x for x in cands if x not in covered[c]]
    (out / "index.json").write_text(json.dumps({"format": VECTORS_FORMAT, "seed": seed, "count": count,
                                                "cases": index, "uncovered": uncovered}, indent=1))
    (out / "README.md").write_text(_readme(comps, covered, uncovered, seed, count))
    return {"format": VECTORS_FORMAT, "cases": len(index), "components": comps,
            "covered": {c: sorted(v) for c, v in covered.items()}, "unreachable": uncovered}


def _readme(comps: list[str], covered: dict, uncovered: dict, seed: int, count: int) -> str:
    lines = [f"# t1virtio conformance vectors ({VECTORS_FORMAT}, seed {seed}, count {count})", "",
             "Each `*.trace.jsonl` is one case in trace format `t1virtio-trace/1` (`trace.schema.json`, here).",
             "Line 1 is the header: `component`, `sizes` (a preset name or explicit sizes), `policy`, optional",
             "`features`, and an optional mid-stream `start` state. Every other line is one operation:",
             "`{\"op\", \"args\", \"result\" | \"error\", \"observe\"?}`.", "",
             "## Replaying a case from C or Rust", "",
             "1. Parse the header; build your implementation at those sizes (rings: one flat zeroed memory of",
             "   the ring's size at address 0 — split: `vring_init(num, 0, 4096)` layout; packed: descriptor ring",
             "   at 0, driver event area at `16*num`, device event area at `16*num + 4`).",
             "2. For each line: `peer` lines are raw writes `[addr, hex]` into that memory (the other side's",
             "   writes, hostile ones included). Any other op: call your implementation with `args`; it must",
             "   return `result` (every key listed) or refuse; a refusal must name the same clause (or an",
             "   errno-ish name of the same kind: ENOMEM/ENOSPC/EAGAIN exhausted, EINVAL caller, EIO/EPROTO peer,",
             "   EFAULT access).",
             "3. The last line's `observe` is the post-state (swiotlb: live allocations `[slot, nslots,",
             "   orig_addr|null, alloc_size]`; rings: queue indices; msgq: count and queued messages in hex).",
             "", "Or let t1virtio do it: write your own results into the same lines and run",
             "`t1virtio oracle check FILE --mode exact` (or `--mode legality` to accept any legal choice).",
             "The vectors are the model's exact choices (Linux 6.1 for rings, swiotlb policy v6.9+);",
             "an implementation with other legal choices should use legality mode on its own traces.", "",
             "## Clauses covered by refusals", ""]
    for c in comps:
        lines.append(f"- `{c}`: {', '.join(sorted(covered[c])) or 'none'}")
    lines += ["", "## Not covered by this corpus", "",
              "Guard clauses of the component that no generated case refuses with. Some are unreachable from the",
              "operations of trace format 1 (indirect descriptors are not in it; lifecycle and VIRQ binding of",
              "msgq and queue-ready checks happen at construction), the others need a longer or targeted",
              "sequence (not yet generated).", ""]
    for c in comps:
        lines.append(f"- `{c}`: {', '.join(uncovered[c]) or 'none'}")
    return "\n".join(lines) + "\n"
