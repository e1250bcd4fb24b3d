"""Presets at Linux's sizes, and machines that run at either preset (``t1virtio fuzz --preset``)."""
import json
import subprocess
import sys

from t1virtio.machines import runner
from t1virtio.machines.common import active_preset, check_invariants, using_preset
from t1virtio.machines.swiotlb_slots import SwiotlbSlotsMachine
from t1virtio.preset import LINUX, SMALL, by_name


def test_linux_preset_has_linux_defaults():
    assert LINUX.pool_nslabs == 32768 and LINUX.io_tlb_segsize == 128      # IO_TLB_DEFAULT_SIZE 64 MiB
    assert LINUX.queue_size == 256 and LINUX.max_queue_size == 32768
    assert by_name("linux") is LINUX and by_name("SMALL") is SMALL


def test_using_preset_sets_and_restores_the_active_preset():
    assert active_preset() is SMALL
    with using_preset("linux") as p:
        assert p is LINUX and active_preset() is LINUX
    assert active_preset() is SMALL


def test_slot_machine_runs_a_linux_size_pool():
    """A few steps of the slot machine on a 32768-slot pool, half full, four areas, rules checked."""
    with using_preset("linux"):
        m = SwiotlbSlotsMachine()
        m.boot(areas=4, policy="v6.1", min_align=0xfff, full=50)
        assert len(m.pool.state.list) == 32768 and len(m.live) == 32768 * 50 // 200
        for i in range(20):
            m.map(buf=i, off=i * 7, size=4096 + i, extra=0, align=0, cpu=i)
            m.unmap(pick=i * 31)
            m.unmap_bogus(slot=i * 1000, off=1, stale=i % 2 == 0)
        check_invariants("swiotlb", m.pool.state)


CLI = [sys.executable, "-c", "from t1virtio.cli import main; main()"]


def test_fuzz_refuses_an_unknown_preset_in_one_line():
    r = subprocess.run(CLI + ["fuzz", "--machine", "msgq", "--preset", "huge", "--examples", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "unknown preset 'huge'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_fuzz_reports_the_preset_and_a_failure_file_names_it(tmp_path):
    r = subprocess.run(CLI + ["fuzz", "--machine", "swiotlb_slots", "--examples", "2", "--json"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["preset"] == "small"
    r = subprocess.run(CLI + ["fuzz", "--machine", "msgq", "--examples", "2", "--preset", "linux"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 2 and "runs at SMALL only" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    fail = {"format": runner.FORMAT, "machine": "swiotlb_slots", "preset": "LINUX", "seed": 0, "clause": None,
            "error": "", "steps": [{"rule": "boot", "args": {"areas": 1, "policy": "v6.1", "min_align": 0, "full": 0}}],
            "program": "state = SwiotlbSlotsMachine()\nstate.boot(areas=1, policy='v6.1', min_align=0, "
                                    "full=0)\nstate.teardown()"}
    assert runner.replay_program(fail) is None and active_preset() is SMALL


# ---------------------------------------------------------------- presets are the one source of sizes

import ast  # noqa: E402
import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from t1virtio import preset as preset_module  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "model"


def _model_sources():
    return [(p, (ast.parse(p.read_text()), p.read_text())) for p in sorted(MODEL.rglob("*.py")) if p.name != "preset.py"]


def hard_coded_sizes(sources) -> list[str]:
    """Places outside preset.py that spell an ABI size literally: 32768 or ``1 << 15`` (the queue maximum), or
    assign ``IO_TLB_SHIFT``. (A byte count such as ``0x8000`` is not a queue size: only the decimal spelling counts.)"""
    out = []
    for p, (tree, text) in sources:
        flags = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and "_F_" in t.id for t in n.targets)}   # flag bits, not sizes
        for node in ast.walk(tree):
            if id(node) in flags:
                continue
            if isinstance(node, ast.Constant) and node.value == preset_module.VIRTQUEUE_MAX_SIZE \
                    and ast.get_source_segment(text, node) == str(preset_module.VIRTQUEUE_MAX_SIZE):
                out.append(f"{p.name}:{node.lineno}: 32768")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.LShift) and \
                    isinstance(node.left, ast.Constant) and node.left.value == 1 and \
                    isinstance(node.right, ast.Constant) and node.right.value == 15:
                out.append(f"{p.name}:{node.lineno}: 1 << 15")
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "IO_TLB_SHIFT"
                                                    for t in node.targets):
                out.append(f"{p.name}:{node.lineno}: IO_TLB_SHIFT assigned")
    return out


def test_no_module_hard_codes_a_preset_size():
    assert not hard_coded_sizes(_model_sources())


def test_hard_coded_size_is_found():
    """The scan can fail: a module that spells the queue maximum is reported."""
    text = "MAX = 32768\nSHIFTED = 1 << 15\nIO_TLB_SHIFT = 11\nVIRTQ_DESC_F_USED = 1 << 15\nMEM = 0x8000\n"
    assert len(hard_coded_sizes([(Path("bad.py"), (ast.parse(text), text))])) == 3


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(preset_module.Preset) if f.name != "name"])
def test_every_preset_field_is_read(field):
    """A size in the preset that no module reads is a knob that does nothing."""
    reads = [p.name for p, (tree, _) in _model_sources() for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and n.attr == field]
    assert reads, f"Preset.{field} is never read by model/"


def test_preset_refuses_impossible_sizes():
    with pytest.raises(ValueError, match="1..32768"):
        dataclasses.replace(SMALL, max_queue_size=65536)
    with pytest.raises(ValueError, match="whole segments"):
        dataclasses.replace(SMALL, pool_nslabs=12)
