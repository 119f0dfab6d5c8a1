"""Bursts and near-identical shots: one user's photos taken seconds apart that look the same.

A burst is a group of one user's photos linked pairwise by (a) taken within `burst_seconds` of each other on
the camera's clock and (b) perceptual hashes (`imagehash.phash`, 64 bits) differing in at most
`burst_hash_distance` bits. Only photos that have a time neighbour that close are hashed at all (most photos of
a collection have none), and a JPEG is hashed from its embedded EXIF thumbnail (else a 1/8-scale draft decode),
so bursts cost little. Each burst
gets an id (`burst-0001`, ...) and one representative: the largest photo (pixels), then the earliest.
Exact copies (the same photo in two Takeout album folders) have the same time and hash, so they form a burst too.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image
from PIL.JpegImagePlugin import JpegImageFile

from wanderlens.data.exif import MetadataError, exif_thumbnail, scan_jpeg
from wanderlens.imaging import open_image


@dataclass
class BurstInput:
    """What grouping needs from one usable photo: `clock` in seconds on the camera's clock (None: unknown)."""

    user_id: str
    clock: float | None
    path: str | Path
    pixels: int
    photo_id: str


def _exif_thumbnail(path: str | Path) -> bytes | None:
    """The thumbnail JPEG a camera or phone embeds in the EXIF block (IFD1), read without decoding the photo."""
    try:
        with open(path, "rb", buffering=0) as fh:
            seg = scan_jpeg(fh, chunk=8192)  # the EXIF block (thumbnail included) is near the start
        return exif_thumbnail(seg.exif) if seg.exif else None
    except (OSError, MetadataError, struct.error, KeyError):
        return None


def _dct_rows(n: int = 32, keep: int = 8) -> np.ndarray:
    """The first `keep` rows of the unnormalised DCT-II matrix (scipy.fftpack.dct's), size n."""
    k = np.arange(keep)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


_DCT8 = _dct_rows()


def phash(image: Image.Image) -> imagehash.ImageHash:
    """`imagehash.phash(image)` (hash_size 8, highfreq_factor 4), computing only the 8x8 low-frequency block
    of the 32x32 DCT (two small matrix products) instead of the whole transform."""
    small = image.convert("L").resize((32, 32), Image.Resampling.LANCZOS)
    pixels = np.frombuffer(small.tobytes(), dtype=np.uint8).reshape(32, 32).astype(np.float64)
    low = _DCT8 @ pixels @ _DCT8.T
    ordered = np.sort(low, axis=None)  # the median of 64 values, without np.median's per-call overhead
    return imagehash.ImageHash(low > (ordered[31] + ordered[32]) / 2)


def photo_hash(path: str | Path) -> imagehash.ImageHash | None:
    """The perceptual hash of a photo from the smallest faithful picture of it: the embedded EXIF thumbnail
    (cameras and phones write one, ~160x120) if any, else the photo decoded at 1/8 scale (JPEG) or in full."""
    try:
        suffix = os.path.splitext(path)[1].lower()
        thumb = _exif_thumbnail(path) if suffix in (".jpg", ".jpeg", ".jpe") else None
        # A thumbnail is a JPEG: Pillow's JPEG reader directly, without identifying the format among all plugins.
        with JpegImageFile(io.BytesIO(thumb)) if thumb is not None else open_image(path) as im:
            if im.format == "JPEG":
                im.draft("L", (32, 32))  # libjpeg scales by up to 1/8 while decoding
            return phash(im)
    except Exception:  # noqa: BLE001 - an undecodable photo simply joins no burst
        return None


def _candidates(items: Sequence[BurstInput], window: float) -> list[int]:
    """Indices of photos with another photo of the same user within `window` seconds, sorted by (user, clock)."""
    timed = sorted((i for i, it in enumerate(items) if it.clock is not None),
                   key=lambda i: (items[i].user_id, items[i].clock))
    keep: set[int] = set()
    for a, b in zip(timed, timed[1:], strict=False):
        ia, ib = items[a], items[b]
        if ia.user_id == ib.user_id and ib.clock - ia.clock <= window:  # type: ignore[operator]
            keep.update((a, b))
    return [i for i in timed if i in keep]


def group_bursts(items: Sequence[BurstInput], window: float, max_distance: int) -> dict[int, tuple[str, bool]]:
    """Map item index -> (burst_id, is_representative) for every photo that belongs to a burst of 2+ photos."""
    order = _candidates(items, window)
    hashes = {i: photo_hash(items[i].path) for i in order}
    parent = {i: i for i in order}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pos, i in enumerate(order):
        hi = hashes[i]
        if hi is None:
            continue
        for j in reversed(order[:pos]):
            if items[j].user_id != items[i].user_id or items[i].clock - items[j].clock > window:  # type: ignore[operator]
                break
            hj = hashes[j]
            if hj is not None and hi - hj <= max_distance:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(find(i), []).append(i)
    bursts = sorted((g for g in groups.values() if len(g) > 1), key=lambda g: min(items[i].photo_id for i in g))
    out: dict[int, tuple[str, bool]] = {}
    for n, members in enumerate(bursts, start=1):
        rep = min(members, key=lambda i: (-items[i].pixels, items[i].clock, items[i].photo_id))
        for i in members:
            out[i] = (f"burst-{n:04d}", i == rep)
    return out


__all__ = ["BurstInput", "group_bursts", "phash", "photo_hash"]
