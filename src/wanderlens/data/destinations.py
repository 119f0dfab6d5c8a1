"""The catalog of 40 destinations the synthetic travellers visit (real places, approximate coordinates).

Each has a `kind` (one of the scene classes) and a scene mix: what a photo taken there is likely to show. The data
lives in the packaged `destinations.csv` beside this module (one row per place; `tags` and `mix` are `;`-separated,
a mix entry is `scene:weight`), read once at import: data is edited as data, not as Python.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib.resources import files

SCENES: tuple[str, ...] = ("beach", "mountain", "city", "forest", "desert", "snow", "lake", "countryside")
CATALOG_RESOURCE = "destinations.csv"


@dataclass(frozen=True)
class Destination:
    """One place of the catalog; `mix` weights the scenes photographed there (the kind itself dominates)."""

    destination_id: str
    name: str
    country: str
    kind: str
    description: str
    tags: tuple[str, ...]
    latitude: float
    longitude: float
    mix: tuple[tuple[str, float], ...]


def _destination(row: dict[str, str], line: int) -> Destination:
    """One catalog row as a Destination; a kind or mix scene outside SCENES names the row (a packaging error)."""
    mix = []
    for part in row["mix"].split(";"):
        scene, weight = part.split(":")
        mix.append((scene.strip(), float(weight)))
    unknown = sorted({row["kind"], *(s for s, _ in mix)} - set(SCENES))
    if unknown:
        raise ValueError(f"{CATALOG_RESOURCE} line {line} ({row['destination_id']}): unknown scene(s) "
                         f"{', '.join(unknown)}; scenes are {', '.join(SCENES)}")
    return Destination(row["destination_id"], row["name"], row["country"], row["kind"], row["description"],
                       tuple(row["tags"].split(";")), float(row["latitude"]), float(row["longitude"]), tuple(mix))


def load_destinations() -> tuple[Destination, ...]:
    """The packaged catalog, in file order (the order the sample generator draws from; changing it changes samples)."""
    text = (files("wanderlens.data") / CATALOG_RESOURCE).read_text(encoding="utf-8")
    return tuple(_destination(row, i) for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2))


DESTINATIONS: tuple[Destination, ...] = load_destinations()
