"""`import_photos`: a folder of real travel photos -> a manifest `ingest` takes unchanged, plus a report.

Reads each file's own metadata (EXIF, XMP, IPTC; `wanderlens.data.exif`), its sidecars (`<name>.txt`,
`<name>.xmp`, Google Takeout JSON; `wanderlens.data.sidecars`), resolves the time taken to UTC (never silently:
a photo whose time zone cannot be known keeps its local time and an empty `taken_at`), names places offline
(`wanderlens.data.places`), lets photos without GPS inherit the position of the same trip, and groups bursts
(`wanderlens.data.bursts`). Every file under the folder is accounted for: a usable photo, a sidecar of one, or an
unusable file with one reason. docs/your-photos.md is the user's guide to every rule here.
"""

from __future__ import annotations

import csv
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wanderlens.config import PhotosConfig
from wanderlens.data.bursts import BurstInput, group_bursts
from wanderlens.data.exif import PhotoMetadata, apply_text
from wanderlens.data.inherit import inherit_positions
from wanderlens.data.places import Place, gazetteer, local_to_utc, time_zones_at, utc_to_local
from wanderlens.data.reader import UnusableFile, read_photo
from wanderlens.data.sidecars import Sidecars, match_sidecars, read_caption_txt, read_takeout
from wanderlens.errors import InputError
from wanderlens.io import write_json

MANIFEST_COLUMNS: tuple[str, ...] = (
    "photo_id", "user_id", "image", "caption", "tags", "taken_at", "latitude", "longitude",
    "place", "city", "region", "country", "country_code", "time_zone", "local_time", "time_note",
    "position_source", "position_note", "altitude", "camera_make", "camera_model", "orientation",
    "display_width", "display_height", "burst_id", "burst_representative", "source_file",
)
# time_note values: where `taken_at` came from, or why it is empty.
TIME_EXIF_OFFSET = "exif_offset"
TIME_TAKEOUT = "takeout_utc"
TIME_GPS_ZONE = "gps_time_zone"
TIME_INHERITED_ZONE = "inherited_time_zone"
TIME_ZONE_UNKNOWN = "time_zone_unknown"
TIME_NONE = "no_time"


@dataclass
class PhotoRecord:
    """One usable photo on its way into the manifest."""

    photo_id: str
    user_id: str
    path: str  # the file (os.path.join of the walked folder and the name)
    meta: PhotoMetadata
    caption: str | None = None
    tags: list[str] = field(default_factory=list)
    taken_at: datetime | None = None  # aware, UTC
    local_time: datetime | None = None  # naive wall clock
    time_zone: str | None = None
    time_note: str = TIME_NONE
    latitude: float | None = None
    longitude: float | None = None
    altitude: float | None = None
    position_source: str = ""
    position_note: str = ""
    gps_rejected: str = ""  # why a GPS position in the file or its sidecar was not used
    place: Place | None = None
    burst_id: str = ""
    burst_representative: bool = True


@dataclass
class ImportReport:
    """What `import_photos` found; `files_found = sidecars_used + usable + unusable` always holds."""

    root: str
    manifest: str
    users: list[str]
    files_found: int
    sidecars_used: int
    usable: int
    unusable: int
    by_reason: dict[str, int]
    unusable_files: list[dict[str, str]]
    time_sources: dict[str, int]
    with_position: int
    positions_inherited: int
    positions_rejected: list[dict[str, str]]
    with_place: int
    places: dict[str, int]
    bursts: int
    photos_in_bursts: int
    seconds: float

    @property
    def photos_found(self) -> int:
        return self.usable + self.unusable

    def to_dict(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["photos_found"] = self.photos_found
        return d

    def summary_text(self) -> str:
        """The human-readable report (printed by the CLI, written to OUT/import_report.txt)."""
        lines = [
            f"{self.files_found} files under {self.root}: {self.sidecars_used} sidecars used, "
            f"{self.photos_found} other files = {self.usable} usable photos + {self.unusable} unusable",
            f"users: {', '.join(self.users) or '(none)'}",
            "time taken: " + ", ".join(f"{k} {v}" for k, v in sorted(self.time_sources.items())),
            f"position: {self.with_position} of {self.usable} ({self.positions_inherited} inherited from their trip),"
            f" {len(self.positions_rejected)} GPS blocks rejected (those photos stay usable without a position)",
            f"places: {self.with_place} photos named; " + ", ".join(f"{k} ({v})" for k, v in
                                                              list(self.places.items())[:8]),
            f"bursts: {self.bursts} ({self.photos_in_bursts} photos; one representative each)",
        ]
        for item in self.positions_rejected:
            lines.append(f"  position rejected: {item['file']}: {item['reason']}")
        for item in self.unusable_files:
            lines.append(f"  unusable: {item['file']}: {item['reason']} ({item['detail']})")
        lines.append(f"manifest: {self.manifest} ({self.seconds:.2f} s)")
        return "\n".join(lines)


def _walk(root: Path) -> list[tuple[str, str, list[str]]]:
    """(folder, its path relative to root in POSIX form or "", sorted file names) for every folder under root, in
    a stable order; symlinked folders are not followed."""
    out = []
    top = str(root)
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        rel = os.path.relpath(dirpath, top).replace(os.sep, "/")
        out.append((dirpath, "" if rel == "." else rel, sorted(filenames)))
    return out


def _user_of(rel_dir: str, root: Path, user: str | None) -> str:
    """`--user NAME`: everyone is NAME; otherwise the first folder level is the user (files at the top: root's name)."""
    if user:
        return user
    return rel_dir.split("/", 1)[0] if rel_dir else root.resolve().name


def _merge_sidecars(rec: PhotoRecord, folder: Path, cars: Sidecars | None) -> Any:
    """Caption/tags from the .xmp sidecar and .txt; returns the Takeout info (or None) for time and position."""
    meta = rec.meta
    if cars is None:  # most photos: no sidecar, nothing to open
        rec.caption = meta.description
        if meta.keywords:
            rec.tags = [t.replace(";", ",").strip() for t in meta.keywords if t.strip()]
        return None
    if cars.xmp is not None:
        try:
            apply_text(meta, (folder / cars.xmp).read_bytes(), None)
        except OSError as exc:
            meta.warnings.append(f"XMP sidecar unreadable: {exc}")
    takeout = read_takeout(folder / cars.takeout) if cars.takeout is not None else None
    txt = read_caption_txt(folder / cars.txt) if cars.txt is not None else None
    rec.caption = txt or (takeout.description if takeout else None) or meta.description
    rec.tags = [t.replace(";", ",").strip() for t in meta.keywords if t.strip()]
    return takeout


def _position(rec: PhotoRecord, takeout: Any) -> None:
    """EXIF GPS first, then the Takeout position; a rejected GPS block is noted, the photo stays usable."""
    meta = rec.meta
    if meta.latitude is not None:
        rec.latitude, rec.longitude, rec.altitude, rec.position_source = (
            meta.latitude, meta.longitude, meta.altitude, "exif")
    elif takeout is not None and takeout.latitude is not None:
        rec.latitude, rec.longitude, rec.altitude, rec.position_source = (
            takeout.latitude, takeout.longitude, takeout.altitude, "takeout")
    if meta.gps_problem or (takeout is not None and takeout.problems):
        problems = ([meta.gps_problem] if meta.gps_problem else []) + (takeout.problems if takeout else [])
        rec.gps_rejected = rec.position_note = "; ".join(problems)


def _time_zones(records: list[PhotoRecord]) -> None:
    """The time zone of every photo with a position, in one batch (what `time_zone_at` answers for each)."""
    located = [r for r in records if r.latitude is not None]
    zones = time_zones_at([r.latitude for r in located], [r.longitude for r in located])  # type: ignore[misc]
    for rec, zone in zip(located, zones, strict=True):
        rec.time_zone = zone


def _resolve_time(rec: PhotoRecord, takeout: Any) -> None:
    """UTC time taken: EXIF time + offset; Takeout's UTC timestamp; EXIF time in the GPS position's zone; else none."""
    meta = rec.meta
    local = meta.local_time
    if local is not None and meta.offset is not None:
        rec.taken_at = (local - meta.offset).replace(tzinfo=UTC)
        rec.local_time, rec.time_note = local, TIME_EXIF_OFFSET
    elif takeout is not None and takeout.taken_at is not None:
        rec.taken_at, rec.time_note = takeout.taken_at, TIME_TAKEOUT
        rec.local_time = utc_to_local(takeout.taken_at, rec.time_zone) if rec.time_zone else local
    elif local is not None and rec.time_zone:
        rec.taken_at = local_to_utc(local, rec.time_zone)
        rec.local_time, rec.time_note = local, TIME_GPS_ZONE
    elif local is not None:
        rec.local_time, rec.time_note = local, TIME_ZONE_UNKNOWN


def _collect(root: Path, user: str | None, cfg: PhotosConfig) -> tuple[list[PhotoRecord], list[UnusableFile], int, int]:
    """Walk root: usable photo records, unusable files, number of files, number of sidecars used."""
    records: list[PhotoRecord] = []
    takeouts: list[Any] = []  # each record's Takeout info (or None), for its time once zones are known
    unusable: list[UnusableFile] = []
    files = sidecars_used = 0
    verify = cfg.verify_pixels
    for dirpath, rel_dir, names in _walk(root):
        files += len(names)
        cars, used = match_sidecars(names)
        sidecars_used += len(used)
        owner = _user_of(rel_dir, root, user)
        folder = Path(dirpath)
        prefix, rel_prefix = os.path.join(dirpath, ""), f"{rel_dir}/" if rel_dir else ""  # join once per folder
        for name in names:
            if name in used:
                continue
            rel, path = rel_prefix + name, prefix + name
            result = read_photo(path, rel, verify_pixels=verify)
            if isinstance(result, UnusableFile):
                unusable.append(result)
                continue
            rec = PhotoRecord(rel, owner, path, result)
            takeout = _merge_sidecars(rec, folder, cars.get(name))
            _position(rec, takeout)
            records.append(rec)
            takeouts.append(takeout)
    _time_zones(records)
    for rec, takeout in zip(records, takeouts, strict=True):
        _resolve_time(rec, takeout)
    return records, unusable, files, sidecars_used


def _name_places(records: list[PhotoRecord]) -> None:
    """City / region / country for every photo with a position (one vectorised gazetteer pass)."""
    located = [r for r in records if r.latitude is not None and r.place is None]
    if not located:
        return
    places = gazetteer().lookup_many([r.latitude for r in located], [r.longitude for r in located])  # type: ignore[misc]
    for rec, place in zip(located, places, strict=True):
        rec.place = place


_EPOCH = datetime(1970, 1, 1)


def _clock(rec: PhotoRecord) -> float | None:
    """Seconds on the camera's clock (wall time if known, else UTC): what burst detection compares."""
    if rec.local_time is not None:  # = local_time.replace(tzinfo=UTC).timestamp(), without the aware copy
        return (rec.local_time - _EPOCH).total_seconds()
    return rec.taken_at.timestamp() if rec.taken_at is not None else None


def _mark_bursts(records: list[PhotoRecord], cfg: PhotosConfig) -> None:
    items = [BurstInput(r.user_id, _clock(r), r.path, (r.meta.width or 0) * (r.meta.height or 0), r.photo_id)
             for r in records]
    for i, (burst_id, rep) in group_bursts(items, cfg.burst_seconds, cfg.burst_hash_distance).items():
        records[i].burst_id, records[i].burst_representative = burst_id, rep


def _iso_utc(dt: datetime | None) -> str:
    if dt is None:
        return ""
    if dt.tzinfo is not UTC:  # every time this module makes is already UTC
        dt = dt.astimezone(UTC)
    text = dt.isoformat(timespec="milliseconds") if dt.microsecond else dt.isoformat()
    return text[:-6] + "Z"  # "+00:00" -> "Z" (cheaper than formatting a naive copy)


def _num(value: float | None, decimals: int | None) -> str:
    if value is None:
        return ""
    return repr(round(value, decimals)) if decimals is not None else repr(value)


_NO_PLACE = ("", "", "", "", "")


def _row(rec: PhotoRecord, decimals: int | None, root: str) -> list[str]:
    meta, place = rec.meta, rec.place
    swap = meta.orientation in (5, 6, 7, 8)
    width, height = (meta.height, meta.width) if swap else (meta.width, meta.height)
    names = (place.label, place.city, place.region, place.country, place.country_code) if place else _NO_PLACE
    return [
        rec.photo_id, rec.user_id, f"{root}/{rec.photo_id}", rec.caption or "", ";".join(rec.tags),
        _iso_utc(rec.taken_at), _num(rec.latitude, decimals), _num(rec.longitude, decimals), *names,
        rec.time_zone or "", rec.local_time.isoformat() if rec.local_time else "", rec.time_note,
        rec.position_source, rec.position_note,
        _num(rec.altitude, 1), meta.make or "", meta.model or "", str(meta.orientation or ""),
        str(width or ""), str(height or ""), rec.burst_id, "true" if rec.burst_representative else "false",
        rec.photo_id,
    ]


def _write_manifest(records: list[PhotoRecord], path: Path, decimals: int | None, root: Path) -> None:
    """manifest.csv, written atomically; `image` is the absolute path (root resolved once, then the photo id)."""
    base = root.resolve().as_posix()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8", buffering=1 << 20) as fh:  # a few large writes
        writer = csv.writer(fh)
        writer.writerow(MANIFEST_COLUMNS)
        writer.writerows([_row(r, decimals, base) for r in records])
    os.replace(tmp, path)


def _report(root: Path, manifest: Path, records: list[PhotoRecord], unusable: list[UnusableFile],
            files: int, sidecars: int, seconds: float) -> ImportReport:
    rejected = [{"file": r.photo_id, "reason": r.gps_rejected} for r in records if r.gps_rejected]
    places = Counter(r.place.label for r in records if r.place is not None)
    in_bursts = [r for r in records if r.burst_id]
    return ImportReport(
        root=str(root), manifest=str(manifest), users=sorted({r.user_id for r in records}),
        files_found=files, sidecars_used=sidecars, usable=len(records), unusable=len(unusable),
        by_reason=dict(sorted(Counter(u.reason for u in unusable).items())),
        unusable_files=[u.to_dict() for u in unusable],
        time_sources=dict(sorted(Counter(r.time_note for r in records).items())),
        with_position=sum(r.latitude is not None for r in records),
        positions_inherited=sum(r.position_source == "inherited" for r in records),
        positions_rejected=rejected, with_place=sum(r.place is not None for r in records),
        places=dict(places.most_common()), bursts=len({r.burst_id for r in in_bursts}),
        photos_in_bursts=len(in_bursts), seconds=round(seconds, 3),
    )


def import_photos(
    root: str | Path,
    out_dir: str | Path,
    user: str | None = None,
    round_coordinates: int | None = None,
    config: PhotosConfig | None = None,
) -> ImportReport:
    """Walk `root` (one user with `user`, else `root/<user>/...`), write OUT/manifest.csv, OUT/import_report.json
    and OUT/import_report.txt; return the report. `round_coordinates` (decimals) overrides the config's."""
    t0 = time.perf_counter()
    cfg = config or PhotosConfig()
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"photo folder not found: {base} (pass a folder of photos, or of <user>/ folders)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records, unusable, files, sidecars = _collect(base, user, cfg)
    records.sort(key=lambda r: r.photo_id)
    _name_places(records)
    inherit_positions(records, cfg)
    _mark_bursts(records, cfg)
    decimals = round_coordinates if round_coordinates is not None else cfg.round_coordinates
    manifest = out / "manifest.csv"
    _write_manifest(records, manifest, decimals, base)
    report = _report(base, manifest, records, unusable, files, sidecars, time.perf_counter() - t0)
    if report.files_found != report.sidecars_used + report.usable + report.unusable:  # a bug, never a user error
        raise RuntimeError(f"import counts do not reconcile: {report.to_dict()}")
    write_json(report.to_dict(), out / "import_report.json")
    (out / "import_report.txt").write_text(report.summary_text() + "\n", encoding="utf-8")
    return report


__all__ = ["MANIFEST_COLUMNS", "ImportReport", "PhotoRecord", "import_photos"]
