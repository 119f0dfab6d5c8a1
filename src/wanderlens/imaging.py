"""Opening any photo the project supports, HEIC/HEIF from phones included, in one place.

Pillow reads JPEG, PNG, GIF, WebP, TIFF... by itself; iPhone and many Android photos are HEIC/HEIF, which Pillow
reads only once `pillow_heif` has registered its opener. `open_image` registers it (once per process: Spark
executors are separate processes, so every decode site must go through here) and opens a path, bytes or a
binary file object, lazily as `Image.open` does (header read, pixels on `load()`).
"""

from __future__ import annotations

import io
import os
import threading
from typing import BinaryIO

from PIL import Image

HEIF_EXTENSIONS: frozenset[str] = frozenset({".heic", ".heif", ".hif", ".avif"})
_lock = threading.Lock()
_heif_state: dict[str, bool] = {}


def register_heif() -> bool:
    """Register pillow_heif's HEIF (and AVIF) opener with Pillow, once; False when pillow_heif is unavailable."""
    if "ok" in _heif_state:
        return _heif_state["ok"]
    with _lock:
        if "ok" not in _heif_state:
            try:
                import pillow_heif
            except ImportError:  # optional at run time: HEIC files are then reported as not readable
                _heif_state["ok"] = False
            else:
                pillow_heif.register_heif_opener()
                _heif_state["ok"] = True
    return _heif_state["ok"]


def open_image(source: str | os.PathLike[str] | bytes | bytearray | BinaryIO) -> Image.Image:
    """Open an image lazily (like `Image.open`) from a path, raw bytes or a binary file object; HEIC/HEIF included.

    Raises what `Image.open` raises (`FileNotFoundError`, `PIL.UnidentifiedImageError`, ...); callers that judge
    files turn those into reasons.
    """
    register_heif()
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(bytes(source))
    return Image.open(source)


__all__ = ["HEIF_EXTENSIONS", "open_image", "register_heif"]
