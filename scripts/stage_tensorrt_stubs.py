"""Stages TensorRT's type stubs (pip package tensorrt-stubs) into a folder for mypy's MYPYPATH,
repairing the few lines of the generated stubs that are not valid Python.

tensorrt-stubs installs `tensorrt/__init__.pyi` and `tensorrt_bindings/*.pyi` without a py.typed
marker (mypy ignores installed packages without one) and its generator wrote parameters named `in`
(a keyword) and a parameter without default after defaulted ones. The staged copy fixes exactly
those, so mypy checks converters/trt_builder.py against TensorRT's real API surface.

Usage: python scripts/stage_tensorrt_stubs.py OUT_DIR   (prints OUT_DIR; exit 3 if stubs missing)
"""

import re
import sys
from importlib import util
from pathlib import Path


def stage(out: Path) -> Path:
    spec = util.find_spec("tensorrt_stubs")
    if spec is None or spec.origin is None:
        raise SystemExit(3)
    site = Path(spec.origin).parent.parent
    for pkg in ("tensorrt", "tensorrt_bindings"):
        (out / pkg).mkdir(parents=True, exist_ok=True)
        for src in (site / pkg).glob("*.pyi"):
            text = src.read_text()
            text = re.sub(r"([(,]\s*)in: ", r"\1in_: ", text)
            text = text.replace(", channel_axis: int) -> IScaleLayer", ", channel_axis: int = ...) -> IScaleLayer")
            (out / pkg / src.name).write_text(text)
    # Imported by tensorrt/__init__.pyi; only the name is needed.
    (out / "tensorrt_libs.pyi").write_text("")
    return out


if __name__ == "__main__":
    print(stage(Path(sys.argv[1])))
