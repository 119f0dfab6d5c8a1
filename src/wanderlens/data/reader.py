"""One file of a photo folder -> its metadata, or the one reason it cannot be used.

JPEG (most photos) takes the fast path: the markers are walked up to the first scan (`scan_jpeg`), the EXIF
block parsed with `struct`, and the file's last two bytes checked for the end-of-image marker; only a JPEG
without that marker (cut off, or with data appended after the image such as a phone's motion-photo video) is
decoded, at 1/8 scale, to decide. Other formats (HEIC/HEIF, PNG, WebP, TIFF, GIF) are opened through
`wanderlens.imaging.open_image`. RAW camera files and videos are recognised by their extension and listed as
unusable with a reason, never skipped silently. Same pixel cap as ingestion, so every usable photo ingests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from wanderlens.data.exif import MetadataError, PhotoMetadata, apply_exif, apply_text, scan_jpeg
from wanderlens.data.probe import DEFAULT_MAX_PIXELS
from wanderlens.data.sidecars import SIDECAR_EXTENSIONS
from wanderlens.imaging import HEIF_EXTENSIONS, open_image, register_heif

RAW_EXTENSIONS: frozenset[str] = frozenset({
    ".3fr", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".fff", ".iiq", ".k25", ".kdc", ".mef", ".mos",
    ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
})
VIDEO_EXTENSIONS: frozenset[str] = frozenset({
    ".3gp", ".avi", ".m2ts", ".m4v", ".mkv", ".mov", ".mp4", ".mpeg", ".mpg", ".mts", ".webm", ".wmv",
})
# Unusable-file reasons (docs/your-photos.md lists them).
REASON_RAW = "raw_not_supported"
REASON_VIDEO = "video"
REASON_EMPTY = "empty_file"
REASON_NOT_IMAGE = "not_an_image"
REASON_NO_HEIF = "heif_not_supported"
REASON_CORRUPT = "corrupt_image"
REASON_TOO_LARGE = "decompression_bomb"
REASON_UNREADABLE = "unreadable"


@dataclass
class UnusableFile:
    """A file that is not a usable photo, with the one reason why (and a sentence for people)."""

    file: str
    reason: str
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason, "detail": self.detail}


def _by_extension(rel: str, suffix: str) -> UnusableFile | None:
    if suffix in RAW_EXTENSIONS:
        return UnusableFile(rel, REASON_RAW, f"RAW camera file ({suffix}); export a JPEG or HEIC of it, or keep the "
                                             "camera's JPEG beside it")
    if suffix in VIDEO_EXTENSIONS:
        return UnusableFile(rel, REASON_VIDEO, f"video ({suffix}); only still photos are imported")
    if suffix in SIDECAR_EXTENSIONS:
        return UnusableFile(rel, REASON_NOT_IMAGE, f"{suffix} file with no photo of the same name beside it "
                                                   "(a sidecar must be named <photo>.txt, <photo>.xmp or <photo>.json)")
    return None


def _decodes(path: str | Path) -> str | None:
    """None when the JPEG decodes at 1/8 scale (every byte of compressed data read); else the error."""
    try:
        with Image.open(path) as im:
            im.draft("L", (max(1, im.size[0] // 8), max(1, im.size[1] // 8)))
            im.load()
    except Exception as exc:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError... on bad data
        return str(exc) or type(exc).__name__
    return None


def _read_jpeg(path: str | Path, rel: str, fh, head: bytes, verify_pixels: bool) -> PhotoMetadata | UnusableFile:
    try:
        seg = scan_jpeg(fh, head=head)
    except MetadataError as exc:
        return UnusableFile(rel, REASON_CORRUPT, f"broken JPEG: {exc}")
    meta = PhotoMetadata(format="JPEG", width=seg.width, height=seg.height)
    if (seg.width or 0) * (seg.height or 0) > DEFAULT_MAX_PIXELS:
        return UnusableFile(rel, REASON_TOO_LARGE, f"declares {seg.width}x{seg.height} pixels, over the cap of "
                                                   f"{DEFAULT_MAX_PIXELS:,}")
    if verify_pixels or not seg.complete:
        error = _decodes(path)
        if error is not None:
            return UnusableFile(rel, REASON_CORRUPT, f"broken JPEG: image data unreadable or cut off ({error})")
    if seg.exif:
        apply_exif(meta, seg.exif)
    if seg.xmp or seg.iptc:
        apply_text(meta, seg.xmp, seg.iptc)
    return meta


def _read_other(path: str | Path, rel: str, suffix: str, verify_pixels: bool) -> PhotoMetadata | UnusableFile:
    try:
        with open_image(path) as im:
            meta = PhotoMetadata(format=im.format, width=im.size[0], height=im.size[1])
            if meta.width * meta.height > DEFAULT_MAX_PIXELS:  # type: ignore[operator]
                return UnusableFile(rel, REASON_TOO_LARGE, f"declares {meta.width}x{meta.height} pixels, over "
                                                           f"the cap of {DEFAULT_MAX_PIXELS:,}")
            exif = im.info.get("exif")
            if not exif and im.format in ("TIFF", "MPO"):
                exif = im.getexif().tobytes()
            xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
            if im.format == "PNG":
                im.verify()
            elif verify_pixels:
                im.load()
    except UnidentifiedImageError:
        if suffix in HEIF_EXTENSIONS and not register_heif():
            return UnusableFile(rel, REASON_NO_HEIF, "HEIC/HEIF photo but pillow-heif is not installed "
                                                     "(pip install pillow-heif)")
        return UnusableFile(rel, REASON_NOT_IMAGE, "not an image file wanderlens can read")
    except Exception as exc:  # noqa: BLE001 - any parser failure on a header or data means a corrupt file
        return UnusableFile(rel, REASON_CORRUPT, f"unreadable image ({exc})")
    if exif:
        apply_exif(meta, exif)
    apply_text(meta, xmp.encode("utf-8") if isinstance(xmp, str) else xmp, None)
    return meta


def read_photo(path: str | Path, rel: str, verify_pixels: bool = False) -> PhotoMetadata | UnusableFile:
    """Metadata of the photo at `path` (`rel`: its name in reports), or why it is not usable."""
    suffix = os.path.splitext(path)[1].lower()
    unusable = _by_extension(rel, suffix)
    if unusable is not None:
        return unusable
    try:
        # One small first read: a JPEG whose metadata (EXIF with its thumbnail, tables, frame header) ends within
        # 8 KB needs no other; one with a larger thumbnail, ICC profile or maker block gets a second read for the
        # rest (cheaper overall than copying 32 KB of every file).
        with open(path, "rb", buffering=0) as fh:
            head = fh.read(8192)
            if not head:
                return UnusableFile(rel, REASON_EMPTY, "0 bytes")
            if head.startswith(b"\xff\xd8\xff"):
                return _read_jpeg(path, rel, fh, head, verify_pixels)
    except OSError as exc:
        return UnusableFile(rel, REASON_UNREADABLE, f"cannot read the file: {exc.strerror or exc}")
    return _read_other(path, rel, suffix, verify_pixels)


__all__ = ["RAW_EXTENSIONS", "VIDEO_EXTENSIONS", "UnusableFile", "read_photo"]
