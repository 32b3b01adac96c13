"""Where `edge-sdk watch` gets its frames: a folder being filled with image files, or whatever
cv2.VideoCapture opens (a video file, a camera index, an RTSP or HTTP stream).

Frames are as OpenCV hands them over: uint8, BGR (or gray, for a single-channel bundle). A frame
that cannot be read is a `Frame` without an image and with the reason, never the end of the run;
a source ends at its end of stream (a video's last frame, a folder idle for ``idle_timeout_s``, a
live stream that gave no frame ``max_failures`` times in a row) and says why in ``end``.
"""

from __future__ import annotations

import os
import re
import stat
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np

# Larger files are not read: a camera image is far smaller, and the runtime refuses sides over
# 32768 pixels anyway.
MAX_FILE_BYTES = 1 << 30
MAX_SOURCE_CHARS = 4096
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


@dataclass
class Frame:
    name: str                       # the file's name, or "SOURCE#index"
    image: np.ndarray | None        # (H, W, 3) BGR or (H, W) gray, uint8; None when unreadable
    reason: str | None = None       # why image is None


def _decode_flag(gray: bool) -> int:
    import cv2

    return cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR


def read_image_file(path: str, gray: bool) -> Frame:
    """One image file as OpenCV decodes it (BGR, or gray). Only regular files are opened, with
    O_NONBLOCK, so that a FIFO named like an image can never block the watch."""
    import cv2

    name = os.path.basename(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return Frame(name, None, f"cannot open the file: {exc.strerror or exc}")
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return Frame(name, None, "not a regular file")
        if st.st_size > MAX_FILE_BYTES:
            return Frame(name, None, f"{st.st_size} bytes, more than the {MAX_FILE_BYTES} an image file may have")
        data = f.read(MAX_FILE_BYTES + 1)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), _decode_flag(gray)) if data else None
    if image is None:
        return Frame(name, None, "not an image OpenCV can decode (corrupt, truncated or another format)")
    return Frame(name, image)


class FolderSource:
    """Image files appearing in a folder (directly in it, in name order; the ones already there
    first). A file is taken once its size and modification time have not changed between two polls,
    so a file still being written is not read half-way. Each file is judged once; the names
    remembered are those still in the folder, so memory stays bounded by the folder's content."""

    kind = "folder"

    def __init__(self, folder: str, *, gray: bool, poll_s: float, idle_timeout_s: float):
        self.folder, self.gray, self.poll_s, self.idle_timeout_s = folder, gray, poll_s, idle_timeout_s
        self.fps = 0.0
        self.end = ""
        self._seen: set[str] = set()
        self._pending: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) at the last poll

    def _poll(self) -> list[str]:
        """Names of the files ready to be read, in name order."""
        from edge_sdk.data.imageio import is_image_file

        present: set[str] = set()
        current: dict[str, tuple[int, int]] = {}
        with os.scandir(self.folder) as it:
            for e in it:
                present.add(e.name)
                if not is_image_file(e.name) or e.name in self._seen:
                    continue
                try:
                    st = e.stat()
                except OSError:  # removed between the listing and the stat
                    continue
                current[e.name] = (st.st_size, st.st_mtime_ns)
        self._seen &= present
        ready = sorted(n for n, sig in current.items() if self._pending.get(n) == sig)
        self._pending = {n: sig for n, sig in current.items() if self._pending.get(n) != sig}
        self._seen.update(ready)
        return ready

    def frames(self) -> Iterator[Frame]:
        last_new = time.monotonic()
        while True:
            try:
                ready = self._poll()
            except OSError as exc:
                self.end = f"the folder cannot be read any more: {exc.strerror or exc}"
                return
            for name in ready:
                yield read_image_file(os.path.join(self.folder, name), self.gray)
            now = time.monotonic()
            if ready or self._pending:
                last_new = now
            elif self.idle_timeout_s > 0 and now - last_new >= self.idle_timeout_s:
                self.end = f"no new image file for {self.idle_timeout_s:g} s"
                return
            time.sleep(self.poll_s)

    def close(self) -> None:
        pass


class CaptureSource:
    """A video file, camera or stream through cv2.VideoCapture. A read that returns no frame is an
    unreadable frame (review) when more frames follow: in a video file, before its frame count; in
    a live stream, until ``max_failures`` reads in a row gave nothing (the stream is then lost)."""

    def __init__(self, source: str, *, gray: bool, max_failures: int):
        import cv2

        self.source, self.gray, self.max_failures = source, gray, max_failures
        self.end = ""
        if source.isdigit():
            self.kind, self.label = "camera", f"camera{int(source)}"
            self.cap = cv2.VideoCapture(int(source))
        elif _URL.match(source):
            self.kind, self.label = "stream", source.rsplit("/", 1)[-1] or source
            self.cap = cv2.VideoCapture(source, cv2.CAP_FFMPEG)
        else:
            self.kind, self.label = "video", os.path.basename(source)
            self.cap = cv2.VideoCapture(source)
        if not self.cap.isOpened():
            self.cap.release()
            what = {"camera": "camera index", "stream": "stream URL", "video": "video file"}[self.kind]
            raise ValueError(f"{source}: OpenCV cannot open this {what} (cv2.VideoCapture)")
        fps = float(self.cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps <= 1000.0 else 0.0
        count = float(self.cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0.0) if self.kind == "video" else 0.0
        self.frame_count = int(count) if 0.0 < count < 1e12 else 0

    def _convert(self, image: np.ndarray) -> np.ndarray:
        import cv2

        if image.ndim == 3 and image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if self.gray and image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        return image

    def frames(self) -> Iterator[Frame]:
        index = failures = 0
        while True:
            ok, image = self.cap.read()
            name = f"{self.label}#{index}"
            if ok and image is not None:
                failures = 0
                yield Frame(name, self._convert(image))
            else:
                # A file with no (known) frame left has ended; elsewhere a failed read is a lost frame.
                if self.kind == "video" and index >= self.frame_count:
                    self.end = "end of stream"
                    return
                failures += 1
                if failures > self.max_failures:
                    self.end = (f"end of stream ({self.max_failures} reads in a row gave no frame)" if self.kind == "video"
                                else f"stream lost: {self.max_failures} reads in a row gave no frame")
                    return
                yield Frame(name, None, "the capture returned no frame (corrupt or missing data)")
            index += 1

    def close(self) -> None:
        self.cap.release()


def open_source(text: str, *, gray: bool, poll_s: float, idle_timeout_s: float, max_failures: int):
    """SOURCE of the command line -> FolderSource or CaptureSource; ValueError naming SOURCE when
    it is none of them or cannot be opened."""
    if not text or len(text) > MAX_SOURCE_CHARS:
        raise ValueError(f"SOURCE: expected a folder, a video file, a camera index or a stream URL of 1 to "
                         f"{MAX_SOURCE_CHARS} characters, got {len(text)}")
    if os.path.isdir(text):
        return FolderSource(text, gray=gray, poll_s=poll_s, idle_timeout_s=idle_timeout_s)
    if text.isdigit() or _URL.match(text):
        return CaptureSource(text, gray=gray, max_failures=max_failures)
    if not os.path.exists(text):
        raise ValueError(f"SOURCE {text}: no such folder or video file (nor a camera index such as 0, or a "
                         f"stream URL such as rtsp://host/path)")
    if not stat.S_ISREG(os.stat(text).st_mode):
        raise ValueError(f"SOURCE {text}: not a folder or a regular file")
    return CaptureSource(text, gray=gray, max_failures=max_failures)
