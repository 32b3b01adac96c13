"""Compares the OpenCV example host's lines (cpp/examples/opencv_host: PNG files read with
cv::imread or cv::VideoCapture, handed over in BGR order) with the Python API's results on the same
images in RGB order (py_results_plain.txt, make_fixtures.py): scores to 1e-5 relative, verdicts
exactly; a file that is no image must be review with the reason.

Usage: python cpp/sdk_tests/check_opencv_host.py FIXTURES_DIR HOST_OUTPUT [--broken-last]
  --broken-last: the run ended with png/broken.png (it must be review, with the reason)
"""

import re
import sys
from pathlib import Path

import numpy as np

LINE = re.compile(r"^frame (\d+) (\S+) (accept|reject|review) score (\S+) normalized (\S+) latency \S+ ms(?: \((.*)\))?$")


def main(fixtures: str, output: str, broken_last: bool) -> int:
    py = [line.split() for line in (Path(fixtures) / "py_results_plain.txt").read_text().splitlines() if line.strip()]
    lines = [m for m in map(LINE.match, Path(output).read_text().splitlines()) if m]
    failures = 0
    if broken_last:
        if not lines or lines[-1][3] != "review" or "cv::imread" not in (lines[-1][6] or ""):
            print(f"{output}: the last frame (broken.png) is not review with the reason: {lines[-1:]}")
            failures += 1
        lines = lines[:-1]
    if len(lines) != len(py):
        print(f"{output}: {len(lines)} frames judged, {len(py)} Python results")
        return 1
    for i, (m, ref) in enumerate(zip(lines, py)):
        got = np.array([float(m[4]), float(m[5])])
        want = np.array([float(ref[0]), float(ref[1])])
        if not np.allclose(got, want, rtol=1e-5, atol=1e-7) or m[3] != ref[2]:
            print(f"frame {i} ({m[2]}): OpenCV host {m[3]} {got} != Python {ref[2]} {want}")
            failures += 1
    print(f"{output}: {len(lines)} frames, OpenCV host (BGR) and Python (RGB) {'agree' if not failures else 'DISAGREE'}")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] != "--broken-last"):
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], len(sys.argv) == 4))
