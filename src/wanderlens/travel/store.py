"""Reading the travel tables `run_travel` wrote, for one user, one photo or one query, without recomputing anything.

These read Parquet with pyarrow (no Spark), so the CLI and the REST service answer in milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wanderlens.errors import InputError


def table_path(travel_dir: str | Path, name: str) -> Path:
    """Path of one travel table, with a clear error when the travel job has not written it."""
    p = Path(travel_dir) / name
    if not p.is_dir():
        raise InputError(f"travel table {name!r} not found in {travel_dir}; run 'wanderlens travel --features DIR "
                         "--model DIR --destinations CSV --out DIR' (or the demo) first")
    return p


def read_rows(travel_dir: str | Path, name: str, column: str | None = None, value: Any = None,
              columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows of a travel table, optionally only those where `column == value` (pushed down into the Parquet read)."""
    import pyarrow.parquet as pq

    filters = [(column, "=", value)] if column is not None else None
    return pq.read_table(table_path(travel_dir, name), columns=columns, filters=filters).to_pylist()


def suggestions_for(travel_dir: str | Path, user_id: str, k: int = 10) -> list[dict[str, Any]]:
    """The stored top-k suggestions (with reasons) of one user, best first."""
    rows = read_rows(travel_dir, "suggestions", "user_id", user_id)
    if not rows:
        known = read_rows(travel_dir, "profiles", columns=["user_id"])
        hint = ", ".join(sorted(r["user_id"] for r in known)[:5])
        raise InputError(f"user {user_id!r} has no suggestions in {travel_dir}; known users include {hint}")
    return sorted(rows, key=lambda r: r["rank"])[:k]


def trips_for(travel_dir: str | Path, user_id: str) -> list[dict[str, Any]]:
    """A user's trips (start, end, days, places, summary), in time order."""
    return sorted(read_rows(travel_dir, "trips", "user_id", user_id), key=lambda r: r["start"])


def search(travel_dir: str | Path, query: str, k: int = 10) -> list[dict[str, Any]]:
    """Photos best matching a text query: the query through the features stage's MiniLM, cosine in the joint
    space of the written search index."""
    from wanderlens.features.sentence import embed_sentences
    from wanderlens.travel.search import SearchIndex

    if not query or not query.strip():
        raise InputError("search query is empty; pass some words, e.g. \"sunset over the sea\"")
    vectors, _ = embed_sentences([query])
    return SearchIndex.load(table_path(travel_dir, "search_index")).search(np.asarray(vectors[0]), k)


def showcase(travel_dir: str | Path, query: str = "sunset over the sea", k: int = 3) -> list[str]:
    """A few lines to show what the travel job made: descriptions, a trip, suggestions with reasons, a search."""
    lines: list[str] = []
    descs = sorted(read_rows(travel_dir, "descriptions", columns=["photo_id", "user_id", "description"]),
                   key=lambda r: r["photo_id"])
    for r in descs[:k]:
        lines.append(f"photo {r['photo_id']}: {r['description']}")
    if descs:
        user = descs[0]["user_id"]
        for t in trips_for(travel_dir, user)[:k]:
            lines.append(f"trip {t['trip_id']}: {t['summary']}")
        if (Path(travel_dir) / "suggestions").is_dir():
            for s in suggestions_for(travel_dir, user, k):
                lines.append(f"suggestion {s['rank']} for {user}: {s['name']} - {s['reason']}")
    for hit in search(travel_dir, query, k):
        lines.append(f"search {query!r}: {hit['photo_id']} ({hit['score']:.2f}) {hit.get('caption') or ''}".rstrip())
    return lines
