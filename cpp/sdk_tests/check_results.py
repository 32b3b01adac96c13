"""Compares the C program's results (c_results_*.txt, test_c_api) with the Python API's on the same
images (py_results_*.txt, make_fixtures.py): one C++ core under two thin layers must agree.
Scores to 1e-5 relative (the layers may batch differently), verdicts exactly.

Usage: python cpp/sdk_tests/check_results.py FIXTURES_DIR OUT_DIR
"""

import sys
from pathlib import Path

import numpy as np


def _read(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def main(fixtures: str, out: str) -> int:
    failures = 0
    for name in ("plain", "frames"):
        py = _read(Path(fixtures) / f"py_results_{name}.txt")
        c = _read(Path(out) / f"c_results_{name}.txt")
        if len(py) != len(c):
            print(f"{name}: {len(c)} C results, {len(py)} Python results")
            failures += 1
            continue
        for i, (a, b) in enumerate(zip(c, py)):
            nums_a = np.array([float(v) for k, v in enumerate(a) if k != 2 and (k < 3 or (k - 3) % 2 == 0)])
            nums_b = np.array([float(v) for k, v in enumerate(b) if k != 2 and (k < 3 or (k - 3) % 2 == 0)])
            words_a = [v for k, v in enumerate(a) if k == 2 or (k > 3 and (k - 3) % 2 == 1)]
            words_b = [v for k, v in enumerate(b) if k == 2 or (k > 3 and (k - 3) % 2 == 1)]
            if not np.allclose(nums_a, nums_b, rtol=1e-5, atol=1e-7) or words_a != words_b:
                print(f"{name} image {i}: C {a} != Python {b}")
                failures += 1
        print(f"{name}: {len(c)} images, C and Python {'agree' if not failures else 'DISAGREE'}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
