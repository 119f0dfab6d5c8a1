"""Input safety for the REST service: body size cap (413), image sniffing by magic bytes (415), pixel-count guard
against decompression bombs (413), and id checks so no id can name a path.

Pure functions and one ASGI middleware, so the rules are testable without a server and apply before any parsing.
"""

from __future__ import annotations

import io
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from PIL import Image

from wanderlens.config import ServingConfig

_DEFAULTS = ServingConfig()
DEFAULT_MAX_BYTES = _DEFAULTS.max_bytes
DEFAULT_MAX_PIXELS = _DEFAULTS.max_pixels
# What an id in a URL may be: letters, digits and `_ . : @ -`, at most 128 characters (no `/`, so never a path).
# Ids in URLs are dictionary keys of the travel tables, never paths: any text without control characters. Photo ids of
# imported folders are relative paths ("ana/IMG 0001.jpg"), user ids folder names.
ID_PATTERN = r"^[^\x00-\x1f\x7f]{1,256}$"
_ID_RE = re.compile(ID_PATTERN)

# (media type, magic test) for the formats the image encoder decodes.
_MAGIC: list[tuple[str, callable]] = [
    ("image/jpeg", lambda b: b[:3] == b"\xff\xd8\xff"),
    ("image/png", lambda b: b[:8] == b"\x89PNG\r\n\x1a\n"),
    ("image/webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
    ("image/gif", lambda b: b[:6] in (b"GIF87a", b"GIF89a")),
    ("image/bmp", lambda b: b[:2] == b"BM"),
]


# The id of the request being answered ('-' outside one): set by the app's outermost middleware, read by logs and
# by every error body.
REQUEST_ID: ContextVar[str] = ContextVar("wanderlens_request_id", default="-")


def error_body(detail: Any) -> dict[str, Any]:
    """The JSON body of every refused request: the message (or FastAPI's field list) and the request id."""
    return {"detail": detail, "request_id": REQUEST_ID.get()}


async def send_json(send: Any, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:
    """Answer from an ASGI middleware with a JSON body; the connection is closed after it (the request body may
    not have been read)."""
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"connection", b"close"), *headers]})
    await send({"type": "http.response.body", "body": data})


class RejectedInput(Exception):
    """A request the service refuses, with the HTTP status and a message naming the field and the fix."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def sniff_image_type(data: bytes) -> str | None:
    """The image media type the bytes start with, whatever a file name or Content-Type claims; None if not one."""
    for media_type, test in _MAGIC:
        if test(data[:16]):
            return media_type
    return None


@dataclass(frozen=True)
class ImageHeader:
    media_type: str
    width: int
    height: int


def check_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, field: str = "photo") -> ImageHeader:
    """Refuse non-images (415), empty or undecodable files (422) and images over `max_pixels` (413).

    Only the header is read (Pillow's lazy open), so a 50,000 x 50,000 bomb is refused before any pixel is decoded.
    """
    if not data:
        raise RejectedInput(422, f"{field}: the file is empty; send a JPEG, PNG, WebP, GIF or BMP photo")
    media_type = sniff_image_type(data)
    if media_type is None:
        raise RejectedInput(415, f"{field}: the content is not a supported image (JPEG, PNG, WebP, GIF, BMP), "
                                 "whatever its file name says")
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError as exc:
        raise RejectedInput(413, f"{field}: the image header claims too many pixels (a decompression bomb?); send "
                                 f"at most {max_pixels:,} pixels") from exc
    except Exception as exc:  # any decoder failure is the client's file
        raise RejectedInput(422, f"{field}: cannot read the image header ({exc}); send a valid image file") from exc
    if width * height > max_pixels:
        raise RejectedInput(413, f"{field}: image is {width}x{height} = {width * height:,} pixels, over the "
                                 f"{max_pixels:,}-pixel limit; resize it first")
    return ImageHeader(media_type, width, height)


def check_id(value: str, field: str) -> str:
    """An id from a URL: 1 to 256 characters, no control characters. It is only ever looked up in a table, so it
    can never name a file (a photo's file comes from the path recorded in its row)."""
    if not _ID_RE.match(value):
        raise RejectedInput(422, f"{field}: {value[:80]!r} is not a valid id (1 to 256 characters, no control "
                                 "characters)")
    return value


class BodySizeLimit:
    """ASGI middleware: 413 when Content-Length or the streamed body exceeds `max_bytes` (before any parsing)."""

    def __init__(self, app, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                return await self._reject(send)
        seen = 0
        over = False
        rejected = False

        async def limited_receive():
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message):
            # Whatever the app answers once the body went over the cap (FastAPI turns a failed body read into
            # 400), the client gets one 413.
            nonlocal rejected
            if over:
                if not rejected:
                    rejected = True
                    await self._reject(send)
                return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            pass
        if over and not rejected:
            rejected = True
            await self._reject(send)

    async def _reject(self, send) -> None:
        await send_json(send, 413, error_body(f"request body over the {self.max_bytes:,}-byte limit; send a smaller "
                                              "photo"))


class UploadLimit:
    """ASGI middleware: at most `max_concurrent` photo uploads (POST to `paths`) are received and answered at once;
    one more gets 503 with `Retry-After` before its body is read, so a burst cannot fill memory with photos."""

    def __init__(self, app, max_concurrent: int, retry_after_s: int = 1,
                 paths: tuple[str, ...] = ("/v1/describe",)) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.retry_after_s = retry_after_s
        self.paths = paths
        self.active = 0  # only touched on the event loop: no lock needed

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") not in self.paths:
            return await self.app(scope, receive, send)
        if self.active >= self.max_concurrent:
            return await send_json(send, 503, error_body(
                f"too many photo uploads at once (limit {self.max_concurrent}); retry in {self.retry_after_s} s"),
                headers=[(b"retry-after", str(self.retry_after_s).encode())])
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


class _BodyTooLarge(Exception):
    pass
