"""Test configuration: the Hypothesis profile comes from T1VIRTIO_PROFILE (default ``ci``)."""
import sys
from pathlib import Path

from t1virtio.machines.profiles import load_profile

sys.path.insert(0, str(Path(__file__).parent))
load_profile()
