"""Photos without GPS inherit the position of their trip: the rule, in one place.

A photo of user U without a position, taken at time t, looks at U's *located* photos (GPS in the file or its
Takeout sidecar; inherited positions are never passed on) just before and just after t:

- both within `inherit_hours` (3 h) of t and within `inherit_max_km` (30 km) of each other: the photo is in the
  same place as its neighbours and takes the position (and place, time zone) of the nearer one in time;
- only one of them within `inherit_hours`, and that one within `inherit_single_hours` (1 h): it takes that one's;
- otherwise (neighbours far apart: the photo lies between two places; or nobody close in time): no position.

Times are compared on the same clock: UTC when the photo's UTC time is known; for a photo whose time zone is
unknown (EXIF time without offset, no GPS), its wall-clock time against the neighbours' wall-clock times. Such
a photo, once it inherits a position, also gets that position's time zone and so its UTC time
(`time_note = inherited_time_zone`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import datetime
from typing import Any

from wanderlens.config import PhotosConfig
from wanderlens.data.places import haversine_km, local_to_utc


def _pick(before: Any, after: Any, t: datetime, key: Callable[[Any], datetime], cfg: PhotosConfig) -> Any:
    """The neighbour to inherit from, or None (see the module docstring)."""
    window = cfg.inherit_hours * 3600.0
    gap_b = (t - key(before)).total_seconds() if before is not None else None
    gap_a = (key(after) - t).total_seconds() if after is not None else None
    near_b = gap_b is not None and gap_b <= window
    near_a = gap_a is not None and gap_a <= window
    if near_b and near_a:
        if haversine_km(before.latitude, before.longitude, after.latitude, after.longitude) > cfg.inherit_max_km:
            return None
        return before if gap_b <= gap_a else after  # type: ignore[operator]
    single = cfg.inherit_single_hours * 3600.0
    if near_b and gap_b <= single:  # type: ignore[operator]
        return before
    if near_a and gap_a <= single:  # type: ignore[operator]
        return after
    return None


def _neighbours(located: list[Any], key: Callable[[Any], datetime | None]) -> tuple[list[datetime], list[Any]]:
    timed = sorted((r for r in located if key(r) is not None), key=lambda r: key(r))  # type: ignore[arg-type,return-value]
    return [key(r) for r in timed], timed  # type: ignore[misc]


def _apply(rec: Any, src: Any, t: datetime, key: Callable[[Any], datetime]) -> None:
    minutes = abs((key(src) - t).total_seconds()) / 60.0
    rec.latitude, rec.longitude, rec.altitude = src.latitude, src.longitude, src.altitude
    rec.place, rec.time_zone, rec.position_source = src.place, src.time_zone, "inherited"
    note = f"inherited from {src.photo_id} ({minutes:.0f} min apart)"
    rec.position_note = f"{rec.position_note}; {note}" if rec.position_note else note
    if rec.taken_at is None and rec.local_time is not None and src.time_zone:
        rec.taken_at = local_to_utc(rec.local_time, src.time_zone)
        rec.time_note = "inherited_time_zone"


def inherit_positions(records: list[Any], cfg: PhotosConfig) -> int:
    """Give photos without a position the position of their trip (rule above); returns how many inherited."""
    by_user: dict[str, list[Any]] = {}
    for r in records:
        by_user.setdefault(r.user_id, []).append(r)
    count = 0
    for photos in by_user.values():
        located = [r for r in photos if r.latitude is not None]
        if not located:
            continue
        utc_key: Callable[[Any], Any] = lambda r: r.taken_at  # noqa: E731
        wall_key: Callable[[Any], Any] = lambda r: r.local_time  # noqa: E731
        clocks = {"utc": _neighbours(located, utc_key), "wall": _neighbours(located, wall_key)}
        for rec in photos:
            if rec.latitude is not None:
                continue
            name, key = ("utc", utc_key) if rec.taken_at is not None else ("wall", wall_key)
            t = key(rec)
            if t is None:
                continue
            times, ordered = clocks[name]
            pos = bisect.bisect_left(times, t)
            before = ordered[pos - 1] if pos > 0 else None
            after = ordered[pos] if pos < len(ordered) else None
            src = _pick(before, after, t, key, cfg)
            if src is not None:
                _apply(rec, src, t, key)
                count += 1
    return count


__all__ = ["inherit_positions"]
