"""`edge-sdk watch`, run as a user runs it (a subprocess): a real video file written with
cv2.VideoWriter (one frame corrupted in the file), a folder of image files (a corrupt one, a FIFO),
a folder filled while the watch runs, Ctrl-C, and the verdicts and scores against the Python
runtime on the same frames in RGB order."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

import edge_sdk  # noqa: E402

pytestmark = pytest.mark.onnxruntime

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "data" / "gpu_fixtures"
BUNDLE = FIXTURES / "mahalanobis.bundle"  # 32 x 40 RGB
GRAY_BUNDLE = FIXTURES / "ssim.bundle"    # 32 x 32 gray
LINE = re.compile(r"^\s*(\d+)  (\S+)  (accept|reject|review)  score (\S+)  normalized (\S+)  latency (\S+) ms(?:  \((.*)\))?$")


def _env():
    # this tree's edge_sdk, also from another working directory (an installed copy may be older)
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1", EDGE_SDK_NUM_THREADS="1")
    env.pop("DISPLAY", None)  # no window: the test machine has no display anyway
    env.pop("WAYLAND_DISPLAY", None)
    return env


def watch(*args, timeout=120):
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "watch", *map(str, args)], cwd=REPO, env=_env(),
                       capture_output=True, text=True, timeout=timeout)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def frames_of(stdout: str) -> list[dict]:
    out = []
    for line in stdout.splitlines():
        m = LINE.match(line)
        if m:
            out.append({"n": int(m[1]), "name": m[2], "verdict": m[3], "score": float(m[4]),
                        "normalized": float(m[5]), "reason": m[7]})
    return out


@pytest.fixture(scope="module")
def rt():
    if "onnxruntime" not in edge_sdk.runtime.available_backends():
        pytest.skip("no ONNX Runtime backend in this build")
    return edge_sdk.Runtime(BUNDLE, threads=1)


def _check_against_runtime(rt, lines, images_rgb):
    """Each judged line against the Python runtime on the same image in RGB order."""
    assert len(lines) == len(images_rgb)
    for line, image in zip(lines, images_rgb):
        ref = rt.predict(image)
        assert line["verdict"] == ref.verdicts[0], line
        np.testing.assert_allclose(line["score"], ref.scores[0], rtol=1e-6)
        np.testing.assert_allclose(line["normalized"], ref.normalized[0], atol=1e-4)


def _pictures(rng, n, h=32, w=40):
    """Smooth frames, every third with a red defect (RGB order): both verdicts occur, and the colour
    makes the channel order matter."""
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        img = np.stack([60 + 2 * xx + i, 80 + 2 * yy, 120 + xx + yy], -1).astype(np.float64) + rng.normal(0, 3, (h, w, 3))
        if i % 3 == 2:
            img[8:20, 10:24] = (255, 0, 0)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _write_video(path: Path, frames_bgr, corrupt: int | None = None):
    """An MJPG AVI; frame `corrupt` zeroed in the file (its JPEG data, not the AVI chunk around it)."""
    h, w = frames_bgr[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert writer.isOpened()
    for f in frames_bgr:
        writer.write(f)
    writer.release()
    if corrupt is not None:
        data = bytearray(path.read_bytes())
        starts = [m.start() for m in re.finditer(b"\xff\xd8\xff", bytes(data))]
        assert len(starts) == len(frames_bgr)
        begin, end = starts[corrupt], starts[corrupt + 1] - 16
        data[begin:end] = bytes(end - begin)
        path.write_bytes(bytes(data))


def _decoded(path: Path) -> list:
    """The frames OpenCV decodes from the file (None where it returns none): what watch judges."""
    cap = cv2.VideoCapture(str(path))
    out = []
    for _ in range(int(cap.get(cv2.CAP_PROP_FRAME_COUNT))):
        ok, f = cap.read()
        out.append(f if ok else None)
    cap.release()
    return out


def test_video_file_with_a_corrupt_frame(rt, rng, tmp_path):
    clip = tmp_path / "clip.avi"
    _write_video(clip, [f[..., ::-1] for f in _pictures(rng, 10)], corrupt=4)
    decoded = _decoded(clip)
    assert decoded[4] is None and all(f is not None for i, f in enumerate(decoded) if i != 4)

    out = tmp_path / "out"
    p = watch(BUNDLE, clip, "--out", out, "--threads", "1")
    assert p.returncode == 0, p.stderr
    lines = frames_of(p.stdout)
    assert [x["n"] for x in lines] == list(range(1, 11))
    assert [x["name"] for x in lines] == [f"clip.avi#{i}" for i in range(10)]
    bad = lines[4]
    assert bad["verdict"] == "review" and np.isnan(bad["score"]) and "unreadable" in bad["reason"]
    judged = [x for i, x in enumerate(lines) if i != 4]
    _check_against_runtime(rt, judged, [np.ascontiguousarray(f[..., ::-1]) for f in decoded if f is not None])
    assert {x["verdict"] for x in judged} >= {"accept", "reject"}
    assert re.search(r"watch: 10 frame\(s\) in .*1 unreadable\); latency ms p50 \S+ p99 \S+ max \S+; "
                     r"stopped: end of stream", p.stdout), p.stdout
    # the annotated video: complete, one picture per judged frame, no temporary left behind
    assert sorted(os.listdir(out)) == ["watch.avi"] and f"annotated video: {out / 'watch.avi'}" in p.stdout
    cap = cv2.VideoCapture(str(out / "watch.avi"))
    n, first = 0, None
    while True:
        ok, f = cap.read()
        if not ok:
            break
        first = f if first is None else first
        n += 1
    assert n == 9 and first.shape[1] >= 2 * 40  # frame | heatmap over it


def test_max_frames_stops_early(rng, tmp_path):
    clip = tmp_path / "clip.avi"
    _write_video(clip, [f[..., ::-1] for f in _pictures(rng, 6)])
    p = watch(BUNDLE, clip, "--max-frames", "3", "--threads", "1")
    assert p.returncode == 0, p.stderr
    assert len(frames_of(p.stdout)) == 3 and "stopped: --max-frames 3 reached" in p.stdout
    # without a display and without --out, only the verdicts: said once on stderr
    assert "verdicts are printed only" in p.stderr


def test_folder_with_unreadable_files(rt, rng, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pictures = _pictures(rng, 4)
    for i, img in enumerate(pictures):
        assert cv2.imwrite(str(folder / f"part{i}.png"), img[..., ::-1])
    (folder / "broken.png").write_bytes(b"not a png")
    good = (folder / "part0.png").read_bytes()
    (folder / "part9_truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("not an image name: not judged")
    os.mkfifo(folder / "pipe.png")  # opening it must never block the watch
    out = tmp_path / "out"
    p = watch(BUNDLE, folder, "--out", out, "--idle-timeout", "0.5", "--poll", "0.05", "--threads", "1", timeout=60)
    assert p.returncode == 0, p.stderr
    lines = frames_of(p.stdout)
    names = [x["name"] for x in lines]
    assert names == ["broken.png", "part0.png", "part1.png", "part2.png", "part3.png", "part9_truncated.png",
                     "pipe.png"]
    for x in (lines[0], lines[5], lines[6]):
        assert x["verdict"] == "review" and np.isnan(x["score"]) and x["reason"].startswith("unreadable"), x
    assert "not a regular file" in lines[6]["reason"]
    _check_against_runtime(rt, lines[1:5], pictures)
    assert {x["verdict"] for x in lines[1:5]} == {"accept", "reject"}
    assert "3 unreadable" in p.stdout and "stopped: no new image file for 0.5 s" in p.stdout
    assert sorted(os.listdir(out)) == [f"00000{n}_part{n - 2}.png" for n in range(2, 6)]


def test_folder_being_filled(rt, rng, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    pictures = _pictures(rng, 3)
    cmd = [sys.executable, "-m", "edge_sdk.cli", "watch", str(BUNDLE), str(folder), "--max-frames", "3",
           "--idle-timeout", "60", "--poll", "0.05", "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "watching" in proc.stdout.readline()
        for i, img in enumerate(pictures):
            # as a camera program should: written under another name, then renamed
            ok, png = cv2.imencode(".png", img[..., ::-1])
            (folder / f".f{i}.partial").write_bytes(png.tobytes())
            os.replace(folder / f".f{i}.partial", folder / f"f{i}.png")
            line = proc.stdout.readline()  # judged before the next file exists
            assert LINE.match(line) and f"f{i}.png" in line, line
        # read on through the same buffered reader: communicate() would read the pipe beneath it
        # and miss a summary line that readline() had already buffered with the last frame's line
        stdout = proc.stdout.read()
        stderr = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped: --max-frames 3 reached" in stdout, (stdout, stderr)


def test_ctrl_c_ends_cleanly_with_a_summary(rng, tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for i, img in enumerate(_pictures(rng, 2)):
        cv2.imwrite(str(folder / f"f{i}.png"), img[..., ::-1])
    cmd = [sys.executable, "-m", "edge_sdk.cli", "watch", str(BUNDLE), str(folder), "--out", str(out), "--save",
           "video", "--poll", "0.05", "--threads", "1"]
    # faulthandler: a watcher that does not end gets SIGABRT below and dumps every thread's stack
    # Started with SIGINT ignored, as a shell's background job (a CI runner) starts it: Ctrl-C must
    # still stop the watch (Python keeps an inherited ignore unless the program handles SIGINT itself).
    proc = subprocess.Popen(cmd, cwd=REPO, env=_env() | {"PYTHONFAULTHANDLER": "1"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        seen = [proc.stdout.readline() for _ in range(3)]  # the header and both frames
        assert all(LINE.match(s) for s in seen[1:]), seen
        time.sleep(0.3)  # waiting for new files now
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            stdout, stderr = proc.communicate(timeout=30)
            pytest.fail(f"the watcher did not end within 60 s of SIGINT; its stacks:\n{stderr[-6000:]}\n{stdout[-2000:]}")
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert re.search(r"watch: 2 frame\(s\) .* stopped: interrupted", stdout), stdout
    assert sorted(os.listdir(out)) == ["watch.avi"]  # complete: renamed into place on the way out
    assert int(cv2.VideoCapture(str(out / "watch.avi")).get(cv2.CAP_PROP_FRAME_COUNT)) == 2


def test_gray_bundle_reads_gray_frames(rng, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    img = _pictures(rng, 1, 32, 32)[0]
    cv2.imwrite(str(folder / "a.png"), img[..., ::-1])
    p = watch(GRAY_BUNDLE, folder, "--max-frames", "1", "--threads", "1")
    assert p.returncode == 0, p.stderr
    [line] = frames_of(p.stdout)
    ref = edge_sdk.Runtime(GRAY_BUNDLE, threads=1).predict(cv2.imread(str(folder / "a.png"), cv2.IMREAD_GRAYSCALE))
    assert line["verdict"] == ref.verdicts[0]
    np.testing.assert_allclose(line["score"], ref.scores[0], rtol=1e-6)


@pytest.mark.parametrize("source, message", [
    ("no/such/place", "no such folder or video file"),
    ("notes.txt", "OpenCV cannot open this video file"),
    ("notes.txt --save video", "--save: says what --out DIR holds"),
])
def test_bad_sources_and_options_are_named(tmp_path, source, message):
    (tmp_path / "notes.txt").write_text("not a video")
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", "watch", str(BUNDLE), *source.split()], cwd=tmp_path,
                       env=_env(), capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_a_missing_opencv_names_the_extra():
    from edge_sdk import cli

    msg = cli.missing_extra_message(ModuleNotFoundError("No module named 'cv2'", name="cv2"))
    assert msg is not None and "pip install 'edge-sdk[opencv]'" in msg
