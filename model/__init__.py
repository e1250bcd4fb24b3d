"""t1virtio: an executable, formally checked reference model of virtio on a Type-1 hypervisor.

Kept light on purpose: importing the package imports neither z3 nor numba.
"""
__version__ = "0.1.0"
