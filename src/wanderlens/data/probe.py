"""Opening one image file safely: size, format, hash, and why it is unusable if it is.

Used on the executors by ingestion (in Arrow batches) and by the plain-loop baseline of the ingest benchmark.
The pixel-count cap is checked from the header, before any pixel is decoded, so a 50,000 x 50,000 bomb costs
nothing; JPEGs are then decoded at 1/8 scale (draft mode), which still reads every byte and so finds truncation.
Pillow's own bomb limit (a process-wide global) is lifted only inside `pillow_pixel_limit`, never left changed.
Files are opened through `wanderlens.imaging.open_image`, so HEIC/HEIF phone photos are probed (and fully decoded)
like any other format instead of being quarantined as not images.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from PIL import Image, UnidentifiedImageError

from wanderlens.data.schema import (
    REASON_CORRUPT_IMAGE,
    REASON_DECOMPRESSION_BOMB,
    REASON_EMPTY_FILE,
    REASON_FILE_MISSING,
    REASON_NOT_AN_IMAGE,
)
from wanderlens.imaging import open_image

DEFAULT_MAX_PIXELS = 100_000_000
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_IN_MEMORY_LIMIT = 256 * 1024 * 1024
_PIXEL_LIMIT_LOCK = threading.RLock()


@dataclass
class ProbeResult:
    """What the header (and a cheap decode) says about one file; `reason` is None when the image is usable."""

    width: int | None = None
    height: int | None = None
    format: str | None = None
    num_bytes: int | None = None
    sha256: str | None = None
    reason: str | None = None
    detail: str | None = None


def local_path(image_path: str) -> str | None:
    """The local file path for a plain path or a file:// URI; None for other schemes."""
    if image_path.startswith("file:"):
        return unquote(urlparse(image_path).path)
    if _URI.match(image_path):
        return None
    return image_path


@contextmanager
def pillow_pixel_limit(limit: int | None) -> Iterator[None]:
    """Pillow's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`, None = off) set for the block, then restored.

    Pillow reads the limit from a module global, so setting it for good would change every image open in the caller's
    process. Blocks run one at a time (a lock), so threaded or nested uses always restore the caller's value.
    """
    with _PIXEL_LIMIT_LOCK:
        previous = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = previous


def probe_image(image_path: str, max_pixels: int = DEFAULT_MAX_PIXELS, decode: bool = True) -> ProbeResult:
    """Open `image_path`, hash its bytes, read its header, check it decodes; never raises for a bad file."""
    res = ProbeResult()
    path = local_path(image_path)
    if path is None:
        res.reason, res.detail = REASON_FILE_MISSING, f"cannot open {image_path}: only local paths and file:// URIs"
        return res
    try:
        size = os.stat(path).st_size
        if os.path.isdir(path):
            res.reason, res.detail = REASON_NOT_AN_IMAGE, f"{path} is a directory"
            return res
        with open(path, "rb") as fh:
            if size <= _IN_MEMORY_LIMIT:  # read once: hashed and parsed from memory
                data = fh.read()
                sha256 = hashlib.sha256(data).hexdigest()
                source: io.BytesIO | str = io.BytesIO(data)
            else:
                sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
                source = path
    except FileNotFoundError:
        res.reason, res.detail = REASON_FILE_MISSING, f"no file at {path}"
        return res
    except OSError as exc:
        res.reason, res.detail = REASON_FILE_MISSING, f"cannot read {path}: {exc.strerror or exc}"
        return res
    res.num_bytes = size
    res.sha256 = sha256
    if size == 0:
        res.reason, res.detail = REASON_EMPTY_FILE, f"{path} has 0 bytes"
        return res
    with pillow_pixel_limit(None):  # the cap in _check_pixels replaces Pillow's own warning/exception
        return _check_pixels(res, source, path, max_pixels, decode)


def _check_pixels(res: ProbeResult, source: io.BytesIO | str, path: str, max_pixels: int, decode: bool) -> ProbeResult:
    """Header, pixel cap and (cheap) decode of an opened file: fills `res` and returns it."""
    try:
        im = open_image(source)  # HEIC/HEIF from phones too (pillow_heif registered once per worker)
    except UnidentifiedImageError:
        res.reason, res.detail = REASON_NOT_AN_IMAGE, f"{path} is not an image file Pillow can read"
        return res
    except Exception as exc:  # noqa: BLE001 - any parser failure on a header means a corrupt file
        res.reason, res.detail = REASON_CORRUPT_IMAGE, f"{path}: unreadable header ({exc})"
        return res
    with im:
        res.width, res.height = int(im.size[0]), int(im.size[1])
        res.format = im.format
        pixels = res.width * res.height
        if pixels > max_pixels:
            res.reason = REASON_DECOMPRESSION_BOMB
            res.detail = (
                f"{path} declares {res.width}x{res.height} = {pixels:,} pixels, over the cap of "
                f"{max_pixels:,} (raise max_pixels if the image is genuine)"
            )
            return res
        if pixels == 0:
            res.reason, res.detail = REASON_CORRUPT_IMAGE, f"{path} declares a 0-pixel image"
            return res
        try:
            if not decode:
                _structural_check(im, path)
            else:
                if im.format == "JPEG":
                    im.draft("RGB", (max(1, res.width // 8), max(1, res.height // 8)))
                im.load()
        except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError... on bad data
            res.reason, res.detail = REASON_CORRUPT_IMAGE, f"{path}: corrupt or truncated image data ({exc})"
    return res


def _structural_check(im: Image.Image, path: str) -> None:
    """Cheap checks without decoding: PNG chunk CRCs through IEND, JPEG end-of-image marker."""
    if im.format == "PNG":
        im.verify()
    elif im.format == "JPEG":
        fp = im.fp
        fp.seek(-2, os.SEEK_END)
        if fp.read(2) != b"\xff\xd9":
            raise OSError("no JPEG end-of-image marker (file truncated)")
