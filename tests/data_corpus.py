"""Builds the corpus of awkward and broken inputs that the ingestion tests feed through Spark.

Everything is generated at test time (no binary files in git). Each row says which reason ingestion must give
(None: the row must be kept), so the tests check every row against its expectation.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

LABELS = {
    "scene": {"type": "multiclass", "classes": ["beach", "city", "forest"]},
    "attributes": {"type": "multilabel", "classes": ["water", "people", "boats"]},
    "highlight": {"type": "binary"},
}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (the pixels are never allocated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def jpeg_header_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A JPEG whose start-of-frame marker declares width x height pixels, followed by almost no data."""
    real = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 100, 50)).save(real, format="JPEG")
    data = bytearray(real.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)  # SOF0: length(2) precision(1) height(2) width(2)
    return bytes(data)


def _image(size=(64, 48), color=(30, 120, 200), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(sum(color))
    arr = np.clip(np.array(color)[None, None, :] + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
    img = Image.fromarray(arr, "RGB")
    return img if mode == "RGB" else img.convert(mode)


def build_corpus(root: Path) -> list[dict[str, str | None]]:
    """Write images under root/img and return manifest rows (strings) with an `expect` key (reason or None)."""
    img = root / "img"
    img.mkdir(parents=True, exist_ok=True)
    good = img / "good.jpg"
    _image().save(good, quality=90)
    _image(color=(200, 60, 40)).convert("RGBA").save(img / "alpha.png")
    Image.new("CMYK", (40, 30), (10, 200, 30, 0)).save(img / "cmyk.jpg")
    arr16 = (np.arange(48 * 32, dtype=np.uint16).reshape(32, 48) * 40).astype(np.uint16)
    Image.fromarray(arr16).save(img / "gray16.png")
    _image(color=(90, 90, 90)).save(img / "café_北京_😀.jpg")
    _image(color=(60, 160, 60)).save(img / "grey.gif")
    (img / "zero.jpg").write_bytes(b"")
    (img / "notes.jpg").write_text("Day 1: arrived in Lisbon, the tram was full.\n", encoding="utf-8")
    full = good.read_bytes()
    big = io.BytesIO()
    _image(size=(320, 240), color=(120, 40, 160)).save(big, format="JPEG", quality=95)
    (img / "truncated.jpg").write_bytes(big.getvalue()[: len(big.getvalue()) // 2])
    png = io.BytesIO()
    _image(size=(200, 150)).save(png, format="PNG")
    (img / "truncated.png").write_bytes(png.getvalue()[: len(png.getvalue()) // 2])
    (img / "bomb.png").write_bytes(png_header_bomb())
    (img / "bomb.jpg").write_bytes(jpeg_header_bomb())
    (img / "a_folder.jpg").mkdir(exist_ok=True)
    assert len(full) > 0

    def row(pid, image, expect, **kw):
        base = {"photo_id": pid, "user_id": "u1", "image": image, "caption": f"photo {pid}", "tags": "a;b",
                "taken_at": "2024-05-01T10:30:00Z", "latitude": "38.7", "longitude": "-9.1", "destination_id": "d1",
                "scene": "city", "attributes": "people", "highlight": "1", "expect": expect}
        base.update(kw)
        return base

    abs_good = str(good.resolve())
    return [
        row("ok-relative", "img/good.jpg", None),
        row("ok-absolute", abs_good, None, tags="", caption=""),
        row("ok-file-uri", good.resolve().as_uri(), None, latitude="", longitude=""),
        row("ok-alpha-png", "img/alpha.png", None, attributes="[]", highlight="false"),
        row("ok-cmyk", "img/cmyk.jpg", None, scene="", attributes="", highlight=""),
        row("ok-16bit", "img/gray16.png", None, taken_at="2024-05-01 10:30:00"),
        row("ok-unicode", "img/café_北京_😀.jpg", None, caption="Café in Beijing 😀, 北京"),
        row("ok-gif", "img/grey.gif", None, taken_at="2024-05-01T12:30:00+02:00"),
        row("zero-bytes", "img/zero.jpg", "empty_file"),
        row("text-as-jpg", "img/notes.jpg", "not_an_image"),
        row("truncated-jpg", "img/truncated.jpg", "corrupt_image"),
        row("truncated-png", "img/truncated.png", "corrupt_image"),
        row("bomb-png", "img/bomb.png", "decompression_bomb"),
        row("bomb-jpg", "img/bomb.jpg", "decompression_bomb"),
        row("missing-file", "img/nowhere.jpg", "file_missing"),
        row("directory", "img/a_folder.jpg", "not_an_image"),
        row("dup", "img/good.jpg", None),
        row("dup", "img/alpha.png", "duplicate_photo_id"),
        row("dup-first-broken", "img/zero.jpg", "empty_file"),
        row("dup-first-broken", "img/good.jpg", None),
        row("bad-time", "img/good.jpg", "bad_taken_at", taken_at="last summer"),
        row("bad-date", "img/good.jpg", "bad_taken_at", taken_at="2024-13-45T10:00:00Z"),
        row("lat-out", "img/good.jpg", "coordinates_out_of_range", latitude="95.0"),
        row("lon-text", "img/good.jpg", "coordinates_out_of_range", longitude="east"),
        row("lat-only", "img/good.jpg", "coordinates_out_of_range", longitude=""),
        row("bad-scene", "img/good.jpg", "unknown_label", scene="spaceship"),
        row("bad-attr", "img/good.jpg", "unknown_label", attributes="water;dragons"),
        row("bad-binary", "img/good.jpg", "unknown_label", highlight="2"),
        row("", "img/good.jpg", "missing_value"),
        row("no-image", "", "missing_value"),
    ]
