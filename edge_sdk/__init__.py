"""edge_sdk: industrial visual anomaly detection at the edge.

Data flows one way: data -> training (edge_sdk.models) -> model dir -> converter -> bundle ->
runtime (C++ core, CPU or CUDA kernels) -> verdicts. See docs/ARCHITECTURE.md.
"""

from edge_sdk._native import core as _core
from edge_sdk import kernels
from edge_sdk.run_vote import RunVote
from edge_sdk.runtime import Runtime

__version__ = _core.__version__


def devices():
    """What the runtime found: the CPU, then each CUDA device with its name and compute capability.

    Returns a list of dicts: ``{"kind": "cpu", "index": 0, "name": "cpu", "threads": n}`` and
    ``{"kind": "cuda", "index": i, "name": ..., "compute_capability": (8, 6), "total_memory": bytes}``.
    """
    return _core.devices()


def set_num_threads(threads: int) -> None:
    """Sets the worker thread count of the CPU kernels (default: all cores, or EDGE_SDK_NUM_THREADS),
    at most 4x the hardware threads (and 256). Safe while kernels run on other threads: they finish
    on the pool they started with."""
    _core.set_num_threads(int(threads))


def get_num_threads() -> int:
    return _core.get_num_threads()


def built_with_cuda() -> bool:
    """True when this build contains the CUDA kernels (a CUDA device is still needed to use them)."""
    return _core.built_with_cuda()


__all__ = ["Runtime", "RunVote", "devices", "set_num_threads", "get_num_threads", "built_with_cuda", "kernels", "__version__"]
