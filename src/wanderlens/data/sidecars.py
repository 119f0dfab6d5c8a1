"""Sidecar files beside a photo: `<name>.txt` captions, `<name>.xmp` (Lightroom, darktable) and Google Photos
Takeout JSON (`<name>.<ext>.json`, `<name>.json`, `<name>.<ext>.supplemental-metadata.json` and its truncations).

Google Takeout cuts file names to 51 characters, so `IMG_20190101_123456789_HDR.jpg.supplemental-metadata.json`
arrives as `...HDR.jpg.supplemental-metad.json` or `...HDR.jpg.suppl.json`, long titles are cut too
(`a-very-long-photo-title-that-goes-on-and-o.json`), and a second copy `IMG(1).jpg` has its sidecar as
`IMG.jpg(1).json`; edited copies `IMG-edited.jpg` share the original's sidecar. `match_sidecars` handles all of
these from the names in one folder, without opening anything.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SIDECAR_EXTENSIONS: frozenset[str] = frozenset({".txt", ".json", ".xmp"})
_SIDECAR_ENDINGS = tuple(SIDECAR_EXTENSIONS)
_SUPPLEMENTAL = ".supplemental-metadata"
_DUP = re.compile(r"^(.*)\((\d+)\)$")
_EDITED = re.compile(r"-(edited|bearbeitet|modifié|editado|modificato)$", re.IGNORECASE)
_MIN_TRUNCATED = 30  # a Takeout title is only cut when it is long


@dataclass
class Sidecars:
    """The sidecar files that belong to one photo."""

    txt: Path | None = None
    xmp: Path | None = None
    takeout: Path | None = None

    def files(self) -> list[Path]:
        return [p for p in (self.txt, self.xmp, self.takeout) if p is not None]


@dataclass
class TakeoutInfo:
    """What a Takeout JSON says: UTC time, position (None when absent or (0, 0)), description."""

    taken_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    description: str | None = None
    problems: list[str] = field(default_factory=list)


def _base_and_dup(name: str) -> tuple[str, str | None]:
    """`IMG(1).jpg` -> (`IMG.jpg`, `1`); `IMG-edited.jpg` -> (`IMG.jpg`, None); others unchanged."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    m = _DUP.match(stem)
    dup = None
    if m:
        stem, dup = m.group(1), m.group(2)
    stem = _EDITED.sub("", stem)
    return (f"{stem}.{ext}" if ext else stem), dup


def _split_dup(json_name: str) -> tuple[str, str | None]:
    """`IMG.jpg(1).json` -> (`IMG.jpg`, `1`); `IMG.jpg.json` -> (`IMG.jpg`, None)."""
    j = json_name[: -len(".json")]
    m = _DUP.match(j)
    return (m.group(1), m.group(2)) if m else (j, None)


class _TakeoutIndex:
    """Media files of one folder by the names a Takeout sidecar can carry: `(base name or stem, duplicate no.)`."""

    def __init__(self, media: list[str]) -> None:
        self.media = media
        self.keys: dict[tuple[str, str | None], list[str]] = {}
        for m in media:
            base, dup = _base_and_dup(m)
            self.keys.setdefault((base, dup), []).append(m)
            if "." in base:
                self.keys.setdefault((base.rsplit(".", 1)[0], dup), []).append(m)

    def lookup(self, json_name: str) -> list[str]:
        """Media files this JSON describes: exact name, the (cut) `.supplemental-metadata` suffix, a cut title."""
        j, dup = _split_dup(json_name)
        if (j, dup) in self.keys:
            return self.keys[(j, dup)]
        for k in range(len(_SUPPLEMENTAL), 0, -1):  # longest (least cut) suffix first
            if j.endswith(_SUPPLEMENTAL[:k]) and (j[: -k], dup) in self.keys:
                return self.keys[(j[: -k], dup)]
        if len(j) >= _MIN_TRUNCATED:  # a long title cut short: the media name starts with it
            hits = [m for m in self.media if _base_and_dup(m)[1] == dup and _base_and_dup(m)[0].startswith(j)]
            return hits[:1] if len(hits) == 1 else []
        return []


def _sidecar_names(names: list[str]) -> list[tuple[str, str, str]]:
    """(name, lower-case name, suffix) of the names with a sidecar extension (a cheap suffix test first: most
    names are photos)."""
    out = []
    for n in names:
        low = n.lower()
        if low.endswith(_SIDECAR_ENDINGS):
            suffix = os.path.splitext(low)[1]
            if suffix in SIDECAR_EXTENSIONS:
                out.append((n, low, suffix))
    return out


def _by_name_or_stem(media: list[str]) -> dict[str, list[str]]:
    """Media files by lower-case name and by lower-case stem: what a `.txt`/`.xmp` sidecar's stem can be."""
    by_key: dict[str, list[str]] = {}
    for m in media:
        low = m.lower()
        by_key.setdefault(low, []).append(m)
        by_key.setdefault(low.rsplit(".", 1)[0], []).append(m)
    return by_key


def match_sidecars(names: list[str]) -> tuple[dict[str, Sidecars], set[str]]:
    """For the file names of one folder: media name -> its sidecars (only media that have one), and the set of
    sidecar names used."""
    sidecars = _sidecar_names(names)
    if not sidecars:
        return {}, set()
    is_sidecar = {n for n, _, _ in sidecars}
    media = [n for n in names if n not in is_sidecar]
    found: dict[str, Sidecars] = {}
    used: set[str] = set()
    by_key: dict[str, list[str]] | None = None  # built only for a folder with .txt/.xmp files
    index: _TakeoutIndex | None = None  # built only for a folder that has JSON files
    for n, low, suffix in sidecars:
        if suffix == ".json":
            index = index or _TakeoutIndex(media)
            targets = index.lookup(n)
        else:
            by_key = _by_name_or_stem(media) if by_key is None else by_key
            targets = by_key.get(low[: -len(suffix)], [])
        attr = "takeout" if suffix == ".json" else suffix[1:]
        for m in targets:
            cars = found.get(m)
            if cars is None:
                cars = found[m] = Sidecars()
            if getattr(cars, attr) is None:
                setattr(cars, attr, Path(n))
                used.add(n)
    return found, used


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _takeout_position(info: TakeoutInfo, data: dict[str, Any]) -> None:
    for key in ("geoData", "geoDataExif"):
        geo = data.get(key)
        if not isinstance(geo, dict):
            continue
        lat, lon = _float(geo.get("latitude")), _float(geo.get("longitude"))
        if lat is None or lon is None or (lat == 0 and lon == 0):
            continue  # Takeout writes 0.0, 0.0 for "no location"
        if not -90 <= lat <= 90 or not -180 <= lon <= 180:
            info.problems.append(f"Takeout {key} ({lat}, {lon}) is outside the globe")
            continue
        info.latitude, info.longitude, info.altitude = lat, lon, _float(geo.get("altitude"))
        return


def read_takeout(path: Path) -> TakeoutInfo | None:
    """Parse a Google Photos Takeout JSON sidecar; None when the file is not one (album metadata, other JSON)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(data, dict) or not any(k in data for k in ("photoTakenTime", "geoData", "creationTime")):
        return None
    info = TakeoutInfo()
    taken = data.get("photoTakenTime")
    stamp = _float(taken.get("timestamp")) if isinstance(taken, dict) else None
    if stamp is not None and stamp > 0:
        info.taken_at = datetime.fromtimestamp(stamp, tz=UTC)
    _takeout_position(info, data)
    desc = data.get("description")
    if isinstance(desc, str) and desc.strip():
        info.description = " ".join(desc.split())
    return info


def read_caption_txt(path: Path) -> str | None:
    """A `<name>.txt` sidecar: the whole text, whitespace collapsed (one line in the manifest)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return " ".join(text.split()) or None


__all__ = ["SIDECAR_EXTENSIONS", "Sidecars", "TakeoutInfo", "match_sidecars", "read_caption_txt", "read_takeout"]
