#!/usr/bin/env python3
"""Counts the runtime pipeline lines that only a GPU build with TensorRT executes.

Counted: non-blank lines outside comments (// to end of line, /* ... */ blocks) of every .cpp,
.cu, .cuh, .hpp under cpp/src/runtime/trt/, except trt_engine.* (the thin wrapper over the
TensorRT API that any TensorRT backend needs, whatever the pipeline). These files are compiled
only where TensorRT's headers and a CUDA compiler are found, and run only with a GPU, so no CPU
test executes them.

Usage: python3 scripts/gpu_only_lines.py [ROOT]     (prints per file, then the total)
"""
import pathlib
import re
import sys

EXCLUDED = re.compile(r"^trt_engine\.")
SUFFIXES = {".cpp", ".cu", ".cuh", ".hpp"}


def code_lines(text: str) -> int:
    count = 0
    in_block = False
    for line in text.splitlines():
        out = []
        i = 0
        in_string = False
        while i < len(line):
            if in_block:
                end = line.find("*/", i)
                if end < 0:
                    i = len(line)
                else:
                    in_block = False
                    i = end + 2
                continue
            ch = line[i]
            if in_string:
                out.append(ch)
                if ch == "\\":
                    out.append(line[i + 1:i + 2])
                    i += 2
                    continue
                if ch == '"':
                    in_string = False
                i += 1
                continue
            if line.startswith("//", i):
                break
            if line.startswith("/*", i):
                in_block = True
                i += 2
                continue
            if ch == '"':
                in_string = True
            out.append(ch)
            i += 1
        if "".join(out).strip():
            count += 1
    return count


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1])
    folder = root / "cpp" / "src" / "runtime" / "trt"
    total = 0
    for path in sorted(folder.iterdir()):
        if path.suffix not in SUFFIXES or EXCLUDED.match(path.name):
            continue
        n = code_lines(path.read_text())
        total += n
        print(f"{n:6d}  {path.relative_to(root)}")
    print(f"{total:6d}  total (GPU-only pipeline lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
