"""Reading image and mask files with Pillow into the arrays a `Sample` holds.

Pixels are taken as stored: no EXIF orientation is applied (industrial cameras do not write it, and
masks are drawn on the stored pixel grid)."""

from __future__ import annotations

import contextlib
import os
import stat
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from edge_sdk.data.sample import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def is_image_file(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def list_images(folder: str, *, what: str = "image folder") -> list[str]:
    """Sorted full paths of the image files directly in ``folder`` (DataError when it does not exist)."""
    if not os.path.isdir(folder):
        raise DataError(f"{what} not found: {folder}")
    return sorted(os.path.join(folder, n) for n in os.listdir(folder)
                  if is_image_file(n) and os.path.isfile(os.path.join(folder, n)))


def without_masks(paths: list[str]) -> list[str]:
    """``paths`` less the masks kept beside their images: ``<stem>_mask.*`` next to ``<stem>.*`` (the
    classes and MVTec naming) and ``<stem>.png`` next to a ``<stem>`` of another format (Magnetic Tile
    Defect: ``.jpg`` image, ``.png`` mask). A folder of good images with masks beside them is then
    read as its images only."""
    by_stem: dict[tuple[str, str], list[str]] = {}
    for p in paths:
        stem, ext = os.path.splitext(p)
        by_stem.setdefault((os.path.dirname(p), os.path.basename(stem)), []).append(ext.lower())

    def is_mask(p: str) -> bool:
        stem, ext = os.path.splitext(p)
        key = (os.path.dirname(p), os.path.basename(stem))
        if key[1].endswith("_mask") and (key[0], key[1][: -len("_mask")]) in by_stem:
            return True
        return ext.lower() == ".png" and any(e != ".png" for e in by_stem[key])

    return [p for p in paths if not is_mask(p)]


def is_regular_file(path: str) -> bool:
    """A regular file (or a link to one): never a FIFO, socket or device, whose reading can block
    forever or never end."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


@contextlib.contextmanager
def _regular_file(path: str):
    """The file opened for reading, refused (DataError) unless it is a regular file. O_NONBLOCK:
    opening a FIFO returns at once instead of waiting for a writer, and fstat then refuses it (a
    check by name before opening could be raced by a rename)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DataError(f"image file not found: {path}") from None
    except OSError as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"cannot read image {path}: not a regular file")
        yield f


def _open(path: str) -> Image.Image:
    with _regular_file(path) as f:
        try:
            with warnings.catch_warnings():
                # A decompression-bomb warning becomes an error: such a file is not a camera image.
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(f)
                im.load()
            im.filename = path  # opened from a file object: keep the name for later messages
            return im
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
                Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise DataError(f"cannot read image {path}: {exc}") from None


def image_size(path: str) -> tuple[int, int]:
    """(height, width) from the file header, without decoding the pixels."""
    with _regular_file(path) as f:
        try:
            with Image.open(f) as im:
                w, h = im.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(f"cannot read image {path}: {exc}") from None
    return h, w


def _to_uint8_gray(im: Image.Image) -> np.ndarray:
    if im.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own 16->8 bit conversion clips; scale the full range instead.
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") else max(float(a.max()), 1.0)
        return np.clip(np.rint(a * (255.0 / top)), 0, 255).astype(np.uint8)
    if im.mode == "F":
        raise DataError(f"floating-point images are not supported: {im.filename}")
    return np.asarray(im.convert("L"), dtype=np.uint8)


def read_image(path: str, *, gray: bool = False) -> np.ndarray:
    """(H, W, 3) uint8 RGB, or (H, W) uint8 when ``gray``. Grayscale files are replicated to 3 channels;
    colour files read with ``gray`` are converted with Pillow's ITU-R 601 luma."""
    im = _open(path)
    try:
        single = im.mode in ("1", "L", "LA", "F") or im.mode in _SIXTEEN_BIT_MODES
        if gray or single:
            g = _to_uint8_gray(im)
            if gray:
                return np.ascontiguousarray(g)
            return np.ascontiguousarray(np.repeat(g[:, :, None], 3, axis=2))
        return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))
    finally:
        im.close()


def read_mask(path: str, expected_hw: tuple[int, int] | None = None, *, image_path: str | None = None) -> np.ndarray:
    """(H, W) uint8 in {0, 1}. A pixel is a defect when its value is above half the range (8 bit: > 127;
    anti-aliased mask edges are cut at the middle), except for masks stored as 0/1 (maximum value 1),
    where any non-zero value is a defect. Colour masks: the largest channel counts."""
    im = _open(path)
    try:
        if im.mode == "1":
            a = np.asarray(im, dtype=bool)
        else:
            if im.mode in _SIXTEEN_BIT_MODES:
                raw = np.asarray(im).astype(np.int64)
                half = 32767 if im.mode.startswith("I;16") else 127
            elif im.mode in ("L", "P", "LA", "RGB", "RGBA", "CMYK", "YCbCr"):
                conv = im.convert("RGB") if im.mode not in ("L", "LA") else im.convert("L")
                raw = np.asarray(conv).astype(np.int64)
                if raw.ndim == 3:
                    raw = raw.max(axis=2)
                half = 127
            else:
                raise DataError(f"unsupported mask mode {im.mode!r}: {path}")
            a = raw > (0 if raw.max(initial=0) == 1 else half)
    finally:
        im.close()
    if expected_hw is not None and a.shape != tuple(expected_hw):
        other = f" of image {image_path}" if image_path else ""
        raise DataError(f"mask {path} is {a.shape[1]}x{a.shape[0]} (WxH) but the image{other} is "
                        f"{expected_hw[1]}x{expected_hw[0]}")
    return a.astype(np.uint8)
