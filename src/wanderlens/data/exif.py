"""Reading what a photo file says about itself: EXIF (time, offset, GPS, camera), XMP and IPTC text, size.

Fast on purpose (docs/your-photos.md, benchmarks/bench_import.py): a JPEG is read only up to its first scan
(the metadata segments come first) plus its last two bytes, and the EXIF TIFF structure is parsed here with
`struct`, only the tags wanted, instead of materialising every tag. Other formats (HEIC, PNG, WebP, TIFF) go
through Pillow (`wanderlens.imaging.open_image`), whose header parsing hands over the same EXIF/XMP bytes.
Nothing here decodes pixels.
"""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

# TIFF/EXIF tags read (everything else is skipped without decoding).
TAG_DESCRIPTION, TAG_MAKE, TAG_MODEL, TAG_ORIENTATION = 0x010E, 0x010F, 0x0110, 0x0112
TAG_EXIF_IFD, TAG_GPS_IFD = 0x8769, 0x8825
TAG_DT_ORIGINAL, TAG_DT_DIGITIZED = 0x9003, 0x9004
TAG_OFFSET_ORIGINAL, TAG_OFFSET_DIGITIZED = 0x9011, 0x9012
TAG_SUBSEC_ORIGINAL = 0x9291
TAG_THUMB_OFFSET, TAG_THUMB_LENGTH = 0x0201, 0x0202  # IFD1: the embedded thumbnail JPEG
_IFD0_TAGS = {TAG_DESCRIPTION, TAG_MAKE, TAG_MODEL, TAG_ORIENTATION, TAG_EXIF_IFD, TAG_GPS_IFD}
_EXIF_TAGS = {TAG_DT_ORIGINAL, TAG_DT_DIGITIZED, TAG_OFFSET_ORIGINAL, TAG_OFFSET_DIGITIZED, TAG_SUBSEC_ORIGINAL}
_GPS_TAGS = {1, 2, 3, 4, 5, 6}  # lat ref, lat, lon ref, lon, altitude ref, altitude
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8}
# Descriptions cameras write by themselves: not a caption.
_CAMERA_BOILERPLATE = re.compile(
    r"^(olympus digital camera|sony dsc|digital camera|default|image|picture|samsung|lg|"
    r"created with .*|exif_jpeg_\d+|dcim.*|img_\d+|dsc_?\d+|untitled)$",
    re.IGNORECASE,
)
_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_XMP_SIG = b"http://ns.adobe.com/xap/1.0/\x00"
_NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
}


class MetadataError(ValueError):
    """The file's structure is broken where it matters (a JPEG without a frame or scan, a cut-off segment)."""


@dataclass
class PhotoMetadata:
    """What one file says: size, camera, raw EXIF time fields, GPS (or why it was rejected), caption and tags."""

    format: str | None = None
    width: int | None = None
    height: int | None = None
    make: str | None = None
    model: str | None = None
    orientation: int | None = None
    local_time: datetime | None = None  # wall-clock time, no zone (EXIF DateTimeOriginal)
    offset: timedelta | None = None  # EXIF OffsetTimeOriginal
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    gps_problem: str | None = None  # why a GPS block present in the file was not used
    description: str | None = None
    keywords: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- JPEG ---------------------------------------------------------------------------------------------------------
@dataclass
class JpegSegments:
    """The metadata segments of a JPEG and its frame size; `complete` is False when the end marker is missing."""

    exif: bytes | None = None
    xmp: bytes | None = None
    iptc: bytes | None = None
    width: int | None = None
    height: int | None = None
    complete: bool = True


def scan_jpeg(fh: Any, chunk: int = 32768, head: bytes | None = None) -> JpegSegments:
    """Walk the JPEG markers of an open binary file up to the frame header: EXIF, XMP, IPTC, frame size.

    `head`: the file's first bytes when the caller has already read them (the file position is just after them).
    Raises MetadataError for a structure that cannot be an image (no frame header, a segment cut off by the end
    of the file). `complete` tells whether the file ends with the end-of-image marker (cheap truncation check).
    """
    data = head if head is not None else fh.read(chunk)
    if not data.startswith(b"\xff\xd8"):
        raise MetadataError("not a JPEG (no start-of-image marker)")
    seg = JpegSegments()
    pos = 2
    while True:
        while len(data) < pos + 4:
            more = fh.read(chunk)
            if not more:
                raise MetadataError("file ends inside the JPEG header (truncated)")
            data += more
        if data[pos] != 0xFF:
            raise MetadataError(f"JPEG marker expected at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker == 0xD9:
            raise MetadataError("JPEG ends before any image data")
        length = (data[pos + 2] << 8) | data[pos + 3]
        end = pos + 2 + length
        while len(data) < end:
            more = fh.read(max(chunk, end - len(data)))
            if not more:
                raise MetadataError("file ends inside a JPEG segment (truncated)")
            data += more
        if marker == 0xDA:
            break
        if marker in _SOF_MARKERS:  # writers put the metadata segments before the frame header
            seg.height, seg.width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            break
        payload = data[pos + 4 : end]
        if marker == 0xE1:
            if payload.startswith(b"Exif\x00\x00") and seg.exif is None:
                seg.exif = payload[6:]
            elif payload.startswith(_XMP_SIG) and seg.xmp is None:
                seg.xmp = payload[len(_XMP_SIG) :]
        elif marker == 0xED and seg.iptc is None:
            seg.iptc = payload
        pos = end
    if not seg.width or not seg.height:
        raise MetadataError("JPEG has no frame header with a size")
    fh.seek(-2, 2)
    seg.complete = fh.read(2) == b"\xff\xd9"
    return seg


# --- TIFF / EXIF --------------------------------------------------------------------------------------------------
def _value(data: bytes, endian: str, typ: int, count: int, raw_off: int) -> Any:
    size = _TYPE_SIZE.get(typ)
    if size is None:
        return None
    total = size * count
    off = raw_off if total <= 4 else struct.unpack_from(endian + "I", data, raw_off)[0]
    if off + total > len(data):
        raise MetadataError("EXIF value points outside the EXIF block")
    if typ == 2:
        return data[off : off + count].split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
    if typ in (1, 6, 7):
        return data[off : off + count]
    if typ in (5, 10):
        fmt = endian + ("I" if typ == 5 else "i") * (2 * count)
        nums = struct.unpack_from(fmt, data, off)
        return tuple((nums[i] / nums[i + 1]) if nums[i + 1] else None for i in range(0, len(nums), 2))
    code = {3: "H", 4: "I", 8: "h", 9: "i", 11: "f", 12: "d"}[typ]
    vals = struct.unpack_from(endian + code * count, data, off)
    return vals[0] if count == 1 else vals


# Per byte order: an IFD entry (tag, type, count, value-or-offset as an unsigned int), and how to take an inline
# SHORT from that int (its first two bytes: the low half in little-endian files, the high half in big-endian ones).
_ENTRY = {"<": struct.Struct("<HHII"), ">": struct.Struct(">HHII")}
_INLINE_SHORT_SHIFT = {"<": 0, ">": 16}
_RATIONALS: dict[tuple[str, int, int], struct.Struct] = {}  # (byte order, type, count) -> its unpacker


def _rationals(data: bytes, endian: str, typ: int, count: int, off: int) -> tuple[float | None, ...]:
    """`count` (signed for type 10) rationals at `off` as floats (None for a zero denominator)."""
    unpacker = _RATIONALS.get((endian, typ, count))
    if unpacker is None:
        unpacker = _RATIONALS[(endian, typ, count)] = struct.Struct(endian + ("I" if typ == 5 else "i") * (2 * count))
    nums = unpacker.unpack_from(data, off)
    if count == 3:  # degrees/minutes/seconds, the usual case, spelled out (a generator costs 5x more)
        return (nums[0] / nums[1] if nums[1] else None, nums[2] / nums[3] if nums[3] else None,
                nums[4] / nums[5] if nums[5] else None)
    return tuple((nums[i] / nums[i + 1]) if nums[i + 1] else None for i in range(0, len(nums), 2))


def _entry_value(data: bytes, endian: str, typ: int, count: int, raw: int, field_off: int) -> Any:
    """One entry's value; the common types (ASCII, rationals, single SHORT/LONG) without the general decoder."""
    if count == 1 and typ == 3:
        return (raw >> _INLINE_SHORT_SHIFT[endian]) & 0xFFFF
    if count == 1 and typ == 4:
        return raw
    if typ == 2 or typ == 5 or typ == 10:
        total = count if typ == 2 else 8 * count
        off = field_off if total <= 4 else raw
        if off + total > len(data):
            raise MetadataError("EXIF value points outside the EXIF block")
        if typ == 2:
            return data[off : off + count].split(b"\x00", 1)[0].decode("utf-8", "replace").strip()
        return _rationals(data, endian, typ, count, off)
    return _value(data, endian, typ, count, field_off)


def _read_ifd(data: bytes, endian: str, offset: int, wanted: set[int] | frozenset[int]) -> tuple[dict[int, Any], int]:
    """The wanted tags of the IFD at `offset`, and the next IFD's offset."""
    if offset <= 0 or offset + 2 > len(data):
        raise MetadataError("EXIF directory offset outside the EXIF block")
    n = data[offset] | (data[offset + 1] << 8) if endian == "<" else (data[offset] << 8) | data[offset + 1]
    end = offset + 2 + 12 * n
    if end > len(data):
        raise MetadataError("EXIF directory runs past the EXIF block")
    out: dict[int, Any] = {}
    entry = _ENTRY[endian]
    for field_off in range(offset + 2, end, 12):
        tag, typ, count, raw = entry.unpack_from(data, field_off)
        if tag in wanted:
            out[tag] = _entry_value(data, endian, typ, count, raw, field_off + 8)
    nxt = struct.unpack_from(endian + "I", data, end)[0] if end + 4 <= len(data) else 0
    return out, nxt


@dataclass
class ExifBlock:
    """The parsed tags of an EXIF block: IFD0, the Exif IFD and the GPS IFD."""

    ifd0: dict[int, Any]
    exif: dict[int, Any]
    gps: dict[int, Any]


def _tiff_header(data: bytes) -> tuple[bytes, str, int]:
    """(the TIFF block without an `Exif\\0\\0` prefix, struct byte order, offset of IFD0)."""
    if data.startswith(b"Exif\x00\x00"):
        data = data[6:]
    if data[:2] == b"II":
        endian = "<"
    elif data[:2] == b"MM":
        endian = ">"
    else:
        raise MetadataError("EXIF block without a TIFF byte-order mark")
    return data, endian, struct.unpack_from(endian + "I", data, 4)[0]


def _thumbnail(data: bytes, endian: str, ifd1_off: int) -> bytes | None:
    """The JPEG thumbnail IFD1 points to, if it is inside the block and looks like a JPEG."""
    if not 0 < ifd1_off < len(data):
        return None
    try:
        ifd1 = _read_ifd(data, endian, ifd1_off, {TAG_THUMB_OFFSET, TAG_THUMB_LENGTH})[0]
    except MetadataError:
        return None
    start, length = ifd1.get(TAG_THUMB_OFFSET), ifd1.get(TAG_THUMB_LENGTH)
    if isinstance(start, int) and isinstance(length, int) and 0 < length and start + length <= len(data):
        thumb = data[start : start + length]
        return thumb if thumb.startswith(b"\xff\xd8") else None
    return None


def parse_exif(data: bytes) -> ExifBlock:
    """IFD0, Exif IFD and GPS IFD of a TIFF-structured EXIF block (only the tags this module uses)."""
    data, endian, ifd0_off = _tiff_header(data)
    ifd0 = _read_ifd(data, endian, ifd0_off, _IFD0_TAGS)[0]
    exif = _read_ifd(data, endian, ifd0[TAG_EXIF_IFD], _EXIF_TAGS)[0] if isinstance(ifd0.get(TAG_EXIF_IFD), int) else {}
    gps = _read_ifd(data, endian, ifd0[TAG_GPS_IFD], _GPS_TAGS)[0] if isinstance(ifd0.get(TAG_GPS_IFD), int) else {}
    return ExifBlock(ifd0, exif, gps)


def exif_thumbnail(data: bytes) -> bytes | None:
    """Only the embedded thumbnail JPEG of an EXIF block (IFD0's tags are skipped, not decoded)."""
    data, endian, ifd0_off = _tiff_header(data)
    return _thumbnail(data, endian, _read_ifd(data, endian, ifd0_off, set())[1])


_EXIF_DATETIME = re.compile(r"^\s*(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


def parse_exif_datetime(text: Any, subsec: Any = None) -> datetime | None:
    """`2024:05:01 10:30:00` (EXIF; also with `-` or `T`) -> naive datetime; blanks and zeros -> None."""
    if not isinstance(text, str):
        return None
    m = _EXIF_DATETIME.match(text)
    if not m or m.group(1) == "0000":
        return None
    found = text[m.start(1) : m.end()]
    try:  # with '-' between the date's parts the match is ISO 8601: C's parser is the cheapest
        dt = datetime.fromisoformat(f"{found[:4]}-{found[5:7]}-{found[8:]}")
    except ValueError:  # a non-ASCII digit or an impossible date: the fields one by one decide
        try:
            dt = datetime(*map(int, m.groups()))
        except ValueError:
            return None
    if isinstance(subsec, str) and subsec.strip().isdigit():
        digits = subsec.strip()[:6]
        dt = dt.replace(microsecond=int(digits.ljust(6, "0")))
    return dt


def parse_offset(text: Any) -> timedelta | None:
    """`+02:00` / `-0530` / `Z` (EXIF OffsetTime*) -> timedelta; anything else (or beyond +-14 h) -> None."""
    return _parse_offset_text(text) if isinstance(text, str) else None


_MAX_OFFSET = timedelta(hours=14)


@lru_cache(maxsize=1024)
def _parse_offset_text(text: str) -> timedelta | None:
    """`parse_offset` of a string (a collection has few distinct offsets: each is parsed once)."""
    t = text.strip()
    if t in ("Z", "+00:00", "-00:00"):
        return timedelta(0)
    m = _EXIF_OFFSET.match(t)
    if not m:
        return None
    delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
    if delta > _MAX_OFFSET or int(m.group(3)) >= 60:
        return None
    return -delta if m.group(1) == "-" else delta


_HEMISPHERES = {"lat": ("N", "S"), "lon": ("E", "W")}


def _dms(value: Any, ref: Any, axis: str) -> tuple[float | None, str | None]:
    """Degrees/minutes/seconds rationals + hemisphere ref -> signed decimal degrees, or (None, reason)."""
    refs = _HEMISPHERES[axis]
    if not isinstance(value, tuple) or not value or len(value) > 3:
        return None, f"GPS {axis} is not degrees/minutes/seconds"
    if None in value:
        return None, f"GPS {axis} has a zero denominator"
    deg, minutes, seconds = map(float, value + (0.0, 0.0)[: 3 - len(value)])
    if deg < 0 or not 0 <= minutes < 60 or not 0 <= seconds < 60:
        return None, f"GPS {axis} {deg}/{minutes}/{seconds} is not valid degrees/minutes/seconds"
    decimal = deg + minutes / 60.0 + seconds / 3600.0
    r = ref.strip().upper()[:1] if isinstance(ref, str) else ""
    if r not in refs:
        return None, f"GPS {axis} has no {'/'.join(refs)} hemisphere reference"
    return (-decimal if r == refs[1] else decimal), None


def gps_position(gps: dict[int, Any]) -> tuple[float | None, float | None, float | None, str | None]:
    """Latitude, longitude, altitude from a GPS IFD, or a reason when the block is unusable (then no position)."""
    if 2 not in gps and 4 not in gps:
        return None, None, None, None
    if 2 not in gps or 4 not in gps:
        return None, None, None, "GPS block has only one of latitude/longitude"
    lat, why = _dms(gps.get(2), gps.get(1), "lat")
    if why:
        return None, None, None, why
    lon, why = _dms(gps.get(4), gps.get(3), "lon")
    if why:
        return None, None, None, why
    assert lat is not None and lon is not None
    if not -90 <= lat <= 90 or not -180 <= lon <= 180:
        return None, None, None, f"GPS position ({lat:.5f}, {lon:.5f}) is outside the globe"
    if lat == 0 and lon == 0:
        return None, None, None, "GPS position is (0, 0), the placeholder of devices without a fix"
    alt = None
    if isinstance(gps.get(6), tuple) and gps[6] and gps[6][0] is not None:
        alt = float(gps[6][0])
        if gps.get(5) in (b"\x01", 1):
            alt = -alt
    return lat, lon, alt, None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def apply_exif(meta: PhotoMetadata, data: bytes) -> None:
    """Fill camera, orientation, time, offset, GPS and description from an EXIF block into `meta`."""
    try:
        block = parse_exif(data)
    except (MetadataError, struct.error, KeyError) as exc:
        meta.warnings.append(f"EXIF unreadable ({exc}); its time and position are ignored")
        return
    ifd0, exif, gps = block.ifd0, block.exif, block.gps
    meta.make, meta.model = _text(ifd0.get(TAG_MAKE)), _text(ifd0.get(TAG_MODEL))
    orient = ifd0.get(TAG_ORIENTATION)
    meta.orientation = orient if isinstance(orient, int) and 1 <= orient <= 8 else None
    desc = ifd0.get(TAG_DESCRIPTION)
    if isinstance(desc, str) and desc.strip() and not _CAMERA_BOILERPLATE.match(desc.strip()):
        meta.description = desc.strip()
    when = parse_exif_datetime(exif.get(TAG_DT_ORIGINAL), exif.get(TAG_SUBSEC_ORIGINAL))
    offset = parse_offset(exif.get(TAG_OFFSET_ORIGINAL))
    if when is None:
        when = parse_exif_datetime(exif.get(TAG_DT_DIGITIZED))
        offset = parse_offset(exif.get(TAG_OFFSET_DIGITIZED))
    meta.local_time, meta.offset = when, offset
    meta.latitude, meta.longitude, meta.altitude, meta.gps_problem = gps_position(gps)


# --- XMP / IPTC ---------------------------------------------------------------------------------------------------
def parse_xmp(packet: bytes) -> tuple[str | None, list[str]]:
    """dc:description (x-default, else the first language) and dc:subject keywords of an XMP packet."""
    start, stop = packet.find(b"<x:xmpmeta"), packet.rfind(b"</x:xmpmeta>")
    if start < 0 or stop < 0:
        start, stop = packet.find(b"<rdf:RDF"), packet.rfind(b"</rdf:RDF>")
        if start < 0 or stop < 0:
            return None, []
        stop += len(b"</rdf:RDF>")
    else:
        stop += len(b"</x:xmpmeta>")
    try:
        root = ET.fromstring(packet[start:stop])
    except ET.ParseError:
        return None, []
    description = None
    for node in root.iter(f"{{{_NS['dc']}}}description"):
        items = node.findall(f".//{{{_NS['rdf']}}}li")
        best = next((li for li in items if li.get("{http://www.w3.org/XML/1998/namespace}lang") == "x-default"),
                    items[0] if items else None)
        text = (best.text if best is not None else node.text) or ""
        if text.strip():
            description = text.strip()
            break
    keywords = [li.text.strip() for node in root.iter(f"{{{_NS['dc']}}}subject")
                for li in node.iter(f"{{{_NS['rdf']}}}li") if li.text and li.text.strip()]
    return description, keywords


def parse_iptc(app13: bytes) -> tuple[str | None, list[str]]:
    """Caption (2:120) and keywords (2:25) from a Photoshop APP13 segment's IPTC-IIM resource (0x0404)."""
    pos = app13.find(b"8BIM\x04\x04")
    if pos < 0:
        return None, []
    pos += 6
    name_len = app13[pos] if pos < len(app13) else 0
    pos += 1 + name_len + ((1 + name_len) % 2)  # Pascal string padded to even length
    if pos + 4 > len(app13):
        return None, []
    (size,) = struct.unpack_from(">I", app13, pos)
    block, i = app13[pos + 4 : pos + 4 + size], 0
    caption, keywords = None, []
    while i + 5 <= len(block) and block[i] == 0x1C:
        record, dataset, length = block[i + 1], block[i + 2], struct.unpack_from(">H", block, i + 3)[0]
        value = block[i + 5 : i + 5 + length]
        i += 5 + length
        if record != 2:
            continue
        try:
            text = value.decode("utf-8").strip()
        except UnicodeDecodeError:
            text = value.decode("latin-1").strip()
        if dataset == 25 and text:
            keywords.append(text)
        elif dataset == 120 and text:
            caption = text
    return caption, keywords


def apply_text(meta: PhotoMetadata, xmp: bytes | None, iptc: bytes | None) -> None:
    """Caption and keywords from XMP (preferred) and IPTC into `meta`; keywords merged without repeats."""
    words: list[str] = []
    if xmp:
        desc, kw = parse_xmp(xmp)
        meta.description = desc or meta.description
        words += kw
    if iptc:
        caption, kw = parse_iptc(iptc)
        if caption and not (xmp and meta.description):
            meta.description = caption
        words += kw
    seen = {w.lower() for w in meta.keywords}
    for w in words:
        if w.lower() not in seen:
            seen.add(w.lower())
            meta.keywords.append(w)


__all__ = [
    "ExifBlock", "JpegSegments", "MetadataError", "PhotoMetadata", "apply_exif", "apply_text", "exif_thumbnail",
    "gps_position", "parse_exif", "parse_exif_datetime", "parse_iptc", "parse_offset", "parse_xmp", "scan_jpeg",
]
