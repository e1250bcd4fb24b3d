"""Every registered machine runs under the active profile and finds nothing."""
import pytest
from hypothesis import settings

from t1virtio.machines import load, names
from hypothesis.stateful import run_state_machine_as_test


@pytest.mark.parametrize("name", names())
def test_machine_finds_nothing(name):
    run_state_machine_as_test(load(name), settings=settings())
