"""Checks of the scalar and tuple arguments of the kernel wrappers (arrays are checked in C++).
Each error names the argument, as the array checks do."""

from __future__ import annotations

import numbers

from edge_sdk._native import core as _core


def as_size(size, name: str = "size") -> tuple[int, int]:
    """(out_h, out_w) as two positive Python ints."""
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise TypeError(f"{name}: expected (out_h, out_w), a sequence of two ints, got {size!r}")
    out = []
    for v in size:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name}: expected two ints, got {size!r}")
        if int(v) < 1:
            raise ValueError(f"{name}: expected positive sizes, got {size!r}")
        out.append(int(v))
    return out[0], out[1]


def as_float(value, name: str) -> float:
    """A real number as a Python float (finiteness and range are checked by the C++ core)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    return float(value)


def as_floats(values, name: str) -> list[float]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name}: expected a sequence of numbers, got {values!r}")
    return [as_float(v, name) for v in values]


def as_device(device) -> str:
    if not isinstance(device, str):
        raise TypeError(f"device: expected a string such as \"cpu\" or \"cuda:0\", got {device!r}")
    return device


def as_color_order(value) -> str:
    """The channel order of 3-channel images, "rgb" or "bgr"; the value is checked by the C++ core,
    the one place that knows the orders."""
    if not isinstance(value, str):
        raise TypeError(f"color_order: expected \"rgb\" or \"bgr\", got {value!r}")
    return _core.parse_color_order(value)
