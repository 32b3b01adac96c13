"""Where `edge-sdk watch` shows its judged frames: a window (cv2.imshow) where a display exists, or
an annotated video or PNG files in a folder. Every picture is heatmap_png's panels: the frame | its
heatmap over it, under a caption with the verdict. Files are written atomically (a temporary name,
renamed when complete), and the output of a run is bounded by ``limit_bytes``: past it, frames
are still judged and printed but no longer written."""

from __future__ import annotations

import contextlib
import os
import re
import sys

import numpy as np

WINDOW = "edge-sdk watch"
VIDEO_NAME = "watch.avi"


def gui_available() -> tuple[bool, str]:
    """(True, "") when cv2.imshow can open a window here, else (False, why not)."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return False, "no display (DISPLAY is not set)"
    import cv2

    gui = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    if gui is None or gui.group(1).upper() == "NONE":
        return False, "this OpenCV has no GUI support (opencv-python-headless)"
    return True, ""


def picture(image: np.ndarray, display: tuple, caption: str):
    """The frame (BGR or gray) | heatmap over it, with its colour bar and a caption: a PIL image.
    ``display``: (map in [0, 1], colour-bar ticks) as predict's display_heatmap gives them."""
    from edge_sdk.heatmap_png import panels

    heat01, ticks = display
    rgb = np.ascontiguousarray(image[..., ::-1]) if image.ndim == 3 else image
    return panels(rgb, heat01, caption, ticks=ticks)


def as_bgr(pic) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(pic.convert("RGB"))[..., ::-1])


class Window:
    """A resizable OpenCV window; show() returns False once the user closes it or presses q / Esc."""

    def __init__(self):
        import cv2

        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)  # cv2.error when no window can be opened

    def show(self, pic) -> bool:
        import cv2

        cv2.imshow(WINDOW, as_bgr(pic))
        key = cv2.waitKey(1) & 0xFF
        return key not in (27, ord("q")) and cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) >= 1

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()


class _Bounded:
    """Counts the bytes written and says once when the limit stops the writing."""

    def __init__(self, limit_bytes: int):
        self.limit_bytes, self.bytes, self.files, self.full = limit_bytes, 0, 0, False

    def room(self) -> bool:
        if not self.full and self.bytes >= self.limit_bytes:
            self.full = True
            print(f"edge-sdk watch: the output reached {self.limit_bytes >> 20} MiB (--out-limit-mb): frames are "
                  f"still judged, no longer written", file=sys.stderr, flush=True)
        return not self.full


class VideoOut(_Bounded):
    """An MJPG AVI video of the pictures (DIR/watch.avi), written under a temporary name and renamed
    when the watch ends, so the file is complete or absent. Pictures of another size than the first
    are scaled to it."""

    def __init__(self, folder: str, fps: float, limit_bytes: int):
        super().__init__(limit_bytes)
        self.path, self.fps = os.path.join(folder, VIDEO_NAME), fps
        self._stack = contextlib.ExitStack()
        self._writer = None
        self._size: tuple[int, int] | None = None

    def write(self, index: int, name: str, pic) -> None:
        import cv2

        from edge_sdk.atomic import atomic_path

        if not self.room():
            return
        frame = as_bgr(pic)
        if self._writer is None:
            self._tmp = self._stack.enter_context(atomic_path(self.path, keep_extension=True))
            self._size = (frame.shape[1], frame.shape[0])
            self._writer = cv2.VideoWriter(self._tmp, cv2.VideoWriter_fourcc(*"MJPG"), self.fps, self._size)
            if not self._writer.isOpened():
                self.close(keep=False)
                raise RuntimeError(f"{self.path}: OpenCV cannot write an MJPG video here (cv2.VideoWriter)")
        if (frame.shape[1], frame.shape[0]) != self._size:
            frame = cv2.resize(frame, self._size, interpolation=cv2.INTER_AREA)
        self._writer.write(frame)
        self.files = 1
        self.bytes = os.path.getsize(self._tmp)

    def close(self, keep: bool) -> str | None:
        """Ends the video: renamed onto its name when ``keep`` and a frame was written, else removed."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        if keep:
            self._stack.close()
            return self.path
        # atomic_path removes its temporary when its block ends with an exception
        self._stack.__exit__(RuntimeError, RuntimeError("watch ended with an error"), None)
        return None


class ImagesOut(_Bounded):
    """One PNG per judged frame: DIR/NNNNNN_NAME.png (NNNNNN the frame's number), each atomic."""

    def __init__(self, folder: str, limit_bytes: int):
        super().__init__(limit_bytes)
        self.folder = folder

    def write(self, index: int, name: str, pic) -> None:
        from edge_sdk.heatmap_png import save_png

        if not self.room():
            return
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(name)[0])[:100]
        path = save_png(pic, os.path.join(self.folder, f"{index:06d}_{stem}.png"))
        self.files += 1
        self.bytes += os.path.getsize(path)

    def close(self, keep: bool) -> str | None:
        return self.folder if self.files else None
