"""The flat memory view keeps every access inside its bounds."""
import pytest

from t1virtio import errors
from t1virtio.hyp.memview import FlatView, read_le, write_le


def outside_access_is_refused() -> str | None:
    """Scenario check: a read one byte past the end must fault; return the broken clause if it does not."""
    v = FlatView(16, base=0x1000)
    try:
        v.read(0x1000 + 15, 2)
    except errors.AccessFault:
        return None
    return "HYP-MEM-no-right"


def test_inside_round_trip():
    v = FlatView(16, base=0x1000)
    write_le(v, 0x1002, 4, 0xDEADBEEF)
    assert read_le(v, 0x1002, 4) == 0xDEADBEEF


@pytest.mark.parametrize("addr,n", [(0xFFF, 1), (0x1010, 1), (0x100F, 2), (0x1000, -1)])
def test_outside_faults(addr, n):
    with pytest.raises(errors.AccessFault, match="HYP-MEM-no-right"):
        FlatView(16, base=0x1000).read(addr, n)


def test_scenario_passes_on_the_model():
    assert outside_access_is_refused() is None
