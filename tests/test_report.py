"""`edge-sdk report`: the real CLI on an MVTec-style data set with two defect types, the page's
contents against the evaluation, and the page in a real headless browser (Debian's chromium):
it loads offline, every picture decodes, no console message, and a screenshot shows the plots. A
deliberately broken page is caught by the same check, so the check can fail."""

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _mvtec(root: Path, rng) -> Path:
    def noise():
        return np.clip(rng.normal(128, 10, (64, 64, 3)), 0, 255)

    for d in ("train/good", "test/good", "test/crack", "test/spot", "ground_truth/crack", "ground_truth/spot"):
        (root / d).mkdir(parents=True)
    for i in range(24):
        Image.fromarray(noise().astype(np.uint8)).save(root / "train/good" / f"{i:03d}.png")
    for i in range(10):
        Image.fromarray(noise().astype(np.uint8)).save(root / "test/good" / f"{i:03d}.png")
    for i in range(5):
        for kind, box, value in (("crack", (20, 30, 10, 50), 30), ("spot", (30, 32, 30, 32), 140)):
            x, m = noise(), np.zeros((64, 64), np.uint8)
            x[box[0]:box[1], box[2]:box[3]] = value  # the spots are faint: some are accepted
            m[box[0]:box[1], box[2]:box[3]] = 255
            Image.fromarray(x.astype(np.uint8)).save(root / "test" / kind / f"{i:03d}.png")
            Image.fromarray(m).save(root / "ground_truth" / kind / f"{i:03d}_mask.png")
    return root


def run(*args):
    p = subprocess.run([sys.executable, "-m", "edge_sdk.cli", *map(str, args)], cwd=REPO, capture_output=True,
                       text=True, timeout=600)
    assert "Traceback" not in p.stderr, p.stderr
    return p


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("no headless chromium on this machine (apt-get install chromium; .ci/run installs it)")
    return exe


def browse(exe: str, page: Path, tmp: Path) -> tuple[str, str, Path]:
    """(DOM after the load event, the browser's log, a screenshot) of ``page``, offline."""
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
              "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp / 'profile'}",
              "--virtual-time-budget=10000"]
    dom = subprocess.run(common + ["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    shot = tmp / f"{page.stem}.png"
    subprocess.run(common + ["--hide-scrollbars", "--window-size=1300,1500", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, text=True, timeout=120)
    return dom.stdout, dom.stderr, shot


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    data = _mvtec(tmp / "d", np.random.default_rng(7))
    args = ["--data", data, "--layout", "mvtec"]
    assert run("train", "--model", "padim", *args, "--out", tmp / "m", "--input-size", "64", "--no-progress",
               "--threads", "1").returncode == 0
    assert run("export", tmp / "m", "--out", tmp / "b", "--review-band", "0.1").returncode == 0
    p = run("report", tmp / "m", *args, "--out", tmp / "r.html", "--bundle", tmp / "b", "--no-progress",
            "--threads", "1")
    assert p.returncode == 0, p.stderr
    e = run("eval", tmp / "m", *args, "--no-progress", "--json", tmp / "e.json")
    assert e.returncode == 0, e.stderr
    return tmp, (tmp / "r.html").read_text(), json.loads((tmp / "e.json").read_text())


def test_page_holds_the_evaluation(report):
    tmp, html, ev = report
    for heading in ("Summary", "Curves and score distributions", "Confusion matrix at the threshold",
                    "Per defect type", "Worst false accepts and false rejects", "Lineage"):
        assert f"<h2>{heading}</h2>" in html
    assert html.count("<svg") == 3  # ROC, PR, histogram
    assert re.search(rf"<td>image_auroc</td><td class=\"num\">{ev['image_auroc']:.4g}</td>", html)
    # the confusion matrix is eval's at the threshold
    assert f"<tr><td>good</td><td class=\"num\">{ev['tn']}</td><td class=\"num\">{ev['fp']}</td></tr>" in html
    assert f"<tr><td>defective</td><td class=\"num\">{ev['fn']}</td><td class=\"num\">{ev['tp']}</td></tr>" in html
    assert "<td>crack</td>" in html and "<td>spot</td>" in html
    assert "review band" in html  # the bundle's band is shaded and counted
    # lineage: the bundle's manifest checksum, the versions, no network reference anywhere
    manifest_sum = hashlib.sha256((tmp / "b" / "manifest.json").read_bytes()).hexdigest()
    assert manifest_sum in html and "data set file list sha256" in html and "onnxruntime" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    # the worst 4 false accepts (defective, accepted) and 4 false rejects (good, rejected)
    assert ev["fn"] + ev["fp"] > 0
    assert html.count("<img ") == min(ev["fn"], 4) + min(ev["fp"], 4)
    assert html.count("<figcaption>false accept: ") == min(ev["fn"], 4)


def test_page_in_a_real_browser(report):
    exe = chromium()
    tmp, html, ev = report
    dom, log, shot = browse(exe, tmp / "r.html", tmp)
    assert 'data-ready="ok"' in dom, log[-2000:]
    assert "CONSOLE" not in log, log[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    # the plots are drawn: the curve colour (#1f77b4) and the defective histogram's red are on screen
    blue = (abs(img[..., 0] - 0x1f) < 30) & (abs(img[..., 1] - 0x77) < 30) & (abs(img[..., 2] - 0xb4) < 30)
    assert blue.sum() > 300
    assert img.std() > 20  # not a blank page


def test_the_browser_check_catches_a_broken_page(report, tmp_path):
    exe = chromium()
    _, html, _ = report
    broken = html.replace('src="data:image/png;base64,', 'src="data:image/png;base64,AAAA', 1)
    if broken == html:  # no picture in this run: break a plot instead
        broken = html.replace("<svg", "<div", 2)
    page = tmp_path / "broken.html"
    page.write_text(broken)
    dom, log, _ = browse(exe, page, tmp_path)
    assert 'data-ready="failed"' in dom and "CONSOLE" in log and "not shown" in log
