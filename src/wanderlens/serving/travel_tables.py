"""Read-only lookups over the travel tables a registry version carries (photos, trips, suggestions, search), no Spark.

The tables are the Parquet outputs of `wanderlens.travel.job.run_travel`, read once with pyarrow and indexed by id,
so a request for one user or one photo is a dict lookup.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def _read_table(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(str(path)).to_pylist()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"type", "size", "indices", "values"}:  # a Spark ML vector
        return _dense(value)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


class TravelTables:
    """Photos by id, trips and suggestions by user and the text search of one registry version's travel folder."""

    def __init__(self, root: Path, photos: dict[str, dict[str, Any]], suggestions: dict[str, list[dict[str, Any]]],
                 search: Any | None, trips: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.root = root
        self.photos = photos
        self.suggestions_by_user = suggestions
        self.searcher = search
        self.trips_by_user = trips or {}

    @classmethod
    def load(cls, root: str | Path) -> TravelTables:
        """Index the travel folder's tables (any that are missing answer empty)."""
        root = Path(root)
        photos: dict[str, dict[str, Any]] = {}
        for name in ("descriptions", "photos", "search_index", "search"):
            if (root / name).is_dir():
                for row in _read_table(root / name):
                    pid = row.get("photo_id")
                    if pid is not None:
                        slim = {k: v for k, v in row.items() if not _is_vector(v)}
                        entry = photos.setdefault(str(pid), {})
                        for k, v in _jsonable(slim).items():
                            if entry.get(k) is None:
                                entry[k] = v
        by_destination: dict[str, list[str]] = {}
        for pid, row in sorted(photos.items()):
            if row.get("destination_id") and row.get("image_path"):
                by_destination.setdefault(str(row["destination_id"]), []).append(pid)
        suggestions: dict[str, list[dict[str, Any]]] = {}
        if (root / "suggestions").is_dir():
            for row in _read_table(root / "suggestions"):
                row = _jsonable({k: v for k, v in row.items() if not _is_vector(v)})
                row.setdefault("photo_ids", by_destination.get(str(row.get("destination_id")), [])[:3])
                suggestions.setdefault(str(row.get("user_id")), []).append(row)
            for rows in suggestions.values():
                rows.sort(key=lambda r: (r.get("rank") if r.get("rank") is not None else 1e9, -(r.get("score") or 0)))
        search = None
        for name in ("search_index", "search"):
            if (root / name).is_dir():
                from wanderlens.travel.search import SearchIndex

                search = SearchIndex.load(root / name)
                break
        return cls(root, photos, suggestions, search, _trips_by_user(root / "trips"))

    def users(self) -> list[str]:
        """Users that have suggestions or trips, sorted."""
        return sorted(set(self.suggestions_by_user) | set(self.trips_by_user))

    def _known(self, user_id: str) -> bool:
        """A user of `users()`: one with trips or suggestions."""
        return user_id in self.trips_by_user or user_id in self.suggestions_by_user

    def trips(self, user_id: str) -> list[dict[str, Any]] | None:
        """A user's trips, earliest first (None when the user is unknown)."""
        return self.trips_by_user.get(user_id, []) if self._known(user_id) else None

    def suggestions(self, user_id: str, k: int) -> list[dict[str, Any]] | None:
        """Top-k suggestions for a user (None when the user is unknown; empty for a user with trips only)."""
        return self.suggestions_by_user.get(user_id, [])[:k] if self._known(user_id) else None

    def photo(self, photo_id: str) -> dict[str, Any] | None:
        return self.photos.get(photo_id)

    def search(self, query: str, k: int) -> list[dict[str, Any]]:
        """Photos best matching a text query, best first."""
        if self.searcher is None:
            return []
        from wanderlens.features.sentence import embed_sentences

        vectors, _present = embed_sentences([query])
        return self.search_vector(vectors[0], k)

    def search_vector(self, vector: Any, k: int) -> list[dict[str, Any]]:
        """Photos nearest to an already embedded query (the service embeds its queries in batches)."""
        if self.searcher is None:
            return []
        hits = self.searcher.search(vector, k)
        out = []
        for hit in hits:
            hit = _jsonable({k2: v for k2, v in dict(hit).items() if not _is_vector(v) and k2 != "image_path"})
            meta = self.photos.get(str(hit.get("photo_id")), {})
            out.append({**{k2: meta.get(k2) for k2 in ("caption", "description", "destination_id", "place")}, **hit})
        return out


def _trips_by_user(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The `trips` table (one row per trip, see `summarize_trips`) grouped by user, earliest trip first."""
    out: dict[str, list[dict[str, Any]]] = {}
    if not path.is_dir():
        return out
    for row in _read_table(path):
        out.setdefault(str(row.get("user_id")), []).append(_jsonable(row))
    for rows in out.values():
        rows.sort(key=lambda r: (r.get("start") or "", str(r.get("trip_id"))))
    return out


def _dense(vector: dict[str, Any]) -> list[float]:
    """A Spark ML vector as Parquet stores it (struct type/size/indices/values) -> dense list of floats."""
    if int(vector["type"]) == 1:
        return [float(v) for v in vector["values"]]
    out = [0.0] * int(vector["size"])
    for i, v in zip(vector["indices"], vector["values"], strict=True):
        out[int(i)] = float(v)
    return out


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 32 and all(isinstance(x, int | float) for x in value[:4])
