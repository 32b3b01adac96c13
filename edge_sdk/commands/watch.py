"""`edge-sdk watch BUNDLE SOURCE`: judges frames as they arrive from a folder being filled, a video
file, a camera or a stream (OpenCV), and shows each verdict with its heatmap."""

from __future__ import annotations

from edge_sdk.cli import bounded_float, bounded_int, threads_option

import collections
import os
import signal
import time

# Latency percentiles of the summary come from the most recent frames: memory stays bounded on an
# endless camera run.
_LATENCY_WINDOW = 100_000


def register(sub) -> None:
    p = sub.add_parser(
        "watch", help="judge frames as they arrive (folder, video file, camera, stream) and show verdict + heatmap",
        description="Judges frames as they arrive with the C++ runtime: SOURCE is a folder being filled with image "
                    "files (the files already in it first, then new ones in name order, each once it has stopped "
                    "growing), a video file, a camera index (0, 1, ...) or a stream URL (rtsp://...), read with "
                    "OpenCV. Frames are OpenCV's BGR, handed to the runtime as they are. Each frame prints one "
                    "line: number, name, verdict (accept / reject / review), score, normalized score, latency. A "
                    "frame that cannot be read is review with the reason, and the watch goes on. With a display "
                    "(and an OpenCV with GUI support) a window shows the frame and its heatmap; --out DIR writes "
                    "them as an annotated video or PNG files. Ends at the end of the stream, after --max-frames, "
                    "after --idle-timeout without a new file, or on Ctrl-C, with a summary.")
    p.add_argument("bundle", help="bundle directory or archive")
    p.add_argument("source", help="folder, video file, camera index or stream URL")
    p.add_argument("--out", metavar="DIR", help="write the annotated frames into DIR")
    p.add_argument("--save", choices=("video", "images"), default=None,
                   help="what --out holds: an MJPG video (watch.avi; default for video, camera and stream sources) "
                        "or one PNG per frame (default for folders)")
    p.add_argument("--out-limit-mb", type=bounded_int("--out-limit-mb", 1, 1 << 20), default=4096,
                   help="stop writing into --out past this many MiB (frames are still judged; default 4096)")
    p.add_argument("--no-window", action="store_true", help="no window even where a display exists")
    p.add_argument("--max-frames", type=bounded_int("--max-frames", 1, 1_000_000_000), default=None,
                   help="stop after this many frames (default: at the end of the stream)")
    p.add_argument("--poll", type=bounded_float("--poll", 0.01, 60.0), default=0.2,
                   help="folder sources: seconds between two looks for new files (default 0.2)")
    p.add_argument("--idle-timeout", type=bounded_float("--idle-timeout", 0.0, 86400.0), default=0.0,
                   help="folder sources: stop after this many seconds without a new file (default 0: never)")
    p.add_argument("--max-failures", type=bounded_int("--max-failures", 1, 100_000), default=50,
                   help="camera and stream sources: reads in a row without a frame before the stream counts as "
                        "lost (default 50)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda:N (see `edge-sdk devices`)")
    p.add_argument("--threads", type=threads_option("--threads"), default=None,
                   help="CPU threads of the runtime (default: all cores)")
    p.add_argument("--precision", default="fp32", help="network variant of the bundle: fp32 (default), fp16, int8 or bf16 (bf16: backend openvino)")
    p.set_defaults(func=run)


class _Tally:
    """Verdict counts and the latencies of the summary."""

    def __init__(self):
        self.frames, self.unreadable = 0, 0
        self.counts = {"accept": 0, "reject": 0, "review": 0}
        self.latency_ms: collections.deque[float] = collections.deque(maxlen=_LATENCY_WINDOW)
        self.start = time.monotonic()

    def summary(self, stop: str) -> str:
        import numpy as np

        c = self.counts
        text = (f"watch: {self.frames} frame(s) in {time.monotonic() - self.start:.1f} s: {c['accept']} accept, "
                f"{c['reject']} reject, {c['review']} review ({self.unreadable} unreadable)")
        if self.latency_ms:
            lat = np.asarray(self.latency_ms)
            last = f" (last {len(lat)})" if len(lat) < self.frames - self.unreadable else ""
            text += (f"; latency ms{last} p50 {np.percentile(lat, 50):.2f} p99 {np.percentile(lat, 99):.2f} "
                     f"max {lat.max():.2f}")
        return text + f"; stopped: {stop}"


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _outputs(args, source):
    """(window or None, file output or None) for this run."""
    import sys

    from edge_sdk.commands import _watch_outputs as outputs

    window = None
    if not args.no_window:
        ok, why = outputs.gui_available()
        if ok:
            try:
                window = outputs.Window()
            except Exception as exc:  # cv2.error: the display refused the window
                why = f"no window could be opened: {exc}"
        if window is None and not args.out:
            print(f"edge-sdk watch: {why}: verdicts are printed only; --out DIR keeps the annotated frames",
                  file=sys.stderr, flush=True)
    files = None
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        limit = args.out_limit_mb << 20
        kind = args.save or ("images" if source.kind == "folder" else "video")
        files = (outputs.ImagesOut(args.out, limit) if kind == "images"
                 else outputs.VideoOut(args.out, source.fps or 10.0, limit))
    return window, files


def run(args) -> int:
    from edge_sdk.cli import UserError
    from edge_sdk.commands._runtime import open_runtime
    from edge_sdk.commands._watch_outputs import picture
    from edge_sdk.commands._watch_sources import open_source
    from edge_sdk.commands.predict import display_heatmap
    from edge_sdk.heatmap_png import caption_text

    if args.save and not args.out:
        raise UserError("--save: says what --out DIR holds; give --out DIR too")
    import cv2  # noqa: F401  (before the bundle is opened: a missing extra is named at once)

    from edge_sdk.commands._watch_outputs import gui_available

    heatmaps = bool(args.out) or (not args.no_window and gui_available()[0])
    rt = open_runtime(args.bundle, device=args.device, threads=args.threads, precision=args.precision,
                      heatmaps=heatmaps, max_batch=1)
    threshold = (rt.manifest.get("calibration") or {}).get("threshold")
    try:
        source = open_source(args.source, gray=rt.manifest["input"]["channels"] == 1, poll_s=args.poll,
                             idle_timeout_s=args.idle_timeout, max_failures=args.max_failures)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        window, files = _outputs(args, source)
    except BaseException:
        source.close()
        raise
    want_pictures = window is not None or files is not None

    print(f"watching {args.source} ({source.kind}) with {args.bundle} [{rt.backend}]; Ctrl-C stops", flush=True)
    tally, stop, ok = _Tally(), "", False
    # A service stop ends as cleanly as Ctrl-C; and Ctrl-C / kill -INT stop the watch even where the
    # parent started it with SIGINT ignored (a shell's background job: Python then keeps the ignore).
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for frame in source.frames():
            tally.frames += 1
            n = tally.frames
            if frame.image is None:
                tally.unreadable += 1
                tally.counts["review"] += 1
                print(f"{n:6d}  {frame.name}  review  score nan  normalized nan  latency - ms  "
                      f"(unreadable: {frame.reason})", flush=True)
            else:
                t0 = time.perf_counter()
                r = rt.predict(frame.image, on_error="review", color_order="bgr")[0]
                ms = (time.perf_counter() - t0) * 1e3
                tally.latency_ms.append(ms)
                tally.counts[r.verdict] += 1
                print(f"{n:6d}  {frame.name}  {r.verdict}  score {r.score:.7g}  normalized {r.normalized:.4f}  "
                      f"latency {ms:.2f} ms" + (f"  ({r.error})" if r.error else ""), flush=True)
                if want_pictures and r.heatmap is not None:
                    pic = picture(frame.image, display_heatmap(r.heatmap, rt.manifest),
                                  caption_text(r.score, threshold, r.verdict,
                                               f"normalized {r.normalized:.3f}  {ms:.1f} ms  {frame.name}"))
                    if files is not None:
                        files.write(n, frame.name, pic)
                    if window is not None and not window.show(pic):
                        stop = "window closed"
                        break
            if args.max_frames is not None and n >= args.max_frames:
                stop = f"--max-frames {args.max_frames} reached"
                break
        else:
            stop = source.end
        ok = True
    except KeyboardInterrupt:
        stop, ok = "interrupted", True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        source.close()
        if window is not None:
            window.close()
        saved = files.close(keep=ok) if files is not None else None
    print(tally.summary(stop), flush=True)
    if saved:
        what = "annotated video" if saved.endswith(".avi") else f"annotated images ({files.files})"
        print(f"{what}: {saved}", flush=True)
    return 0
