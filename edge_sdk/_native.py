"""Loads the compiled core, with a message that says how to build it when it is missing."""

try:
    from edge_sdk import _core as core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only on a broken install
    raise ImportError(
        "edge_sdk._core is not built. Install the package with `pip install .`, or build in place "
        "with `cmake -S . -B build && cmake --build build` from the repository root. "
        f"(original error: {exc})"
    ) from exc
