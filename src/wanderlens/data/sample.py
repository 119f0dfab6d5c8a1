"""Synthetic travel collection: users with latent tastes take trips and photograph what they see.

Everything here is SYNTHETIC (procedural images, template captions, invented users); only the destination
catalog names real places. The generator is deterministic for a seed and renders in parallel processes.
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from wanderlens.data.destinations import DESTINATIONS, SCENES, Destination
from wanderlens.data.places import haversine_km_array
from wanderlens.data.render import PhotoSpec, render_photo
from wanderlens.data.schema import DESTINATION_COLUMNS, LabelSpec, dump_labels
from wanderlens.errors import InputError

ATTRIBUTES: tuple[str, ...] = (
    "water",
    "people",
    "boats",
    "buildings",
    "snow",
    "trees",
    "sunset",
    "night",
    "mountains",
    "clouds",
)
TIMES_OF_DAY: tuple[str, ...] = ("day", "sunset", "night")
SAMPLE_LABELS: dict[str, LabelSpec] = {
    "scene": LabelSpec("scene", "multiclass", SCENES),
    "attributes": LabelSpec("attributes", "multilabel", ATTRIBUTES),
    "highlight": LabelSpec("highlight", "binary"),
    "time_of_day": LabelSpec("time_of_day", "multiclass", TIMES_OF_DAY),
}
MANIFEST_COLUMNS: tuple[str, ...] = (
    "photo_id",
    "user_id",
    "image",
    "caption",
    "tags",
    "taken_at",
    "latitude",
    "longitude",
    "destination_id",
    "scene",
    "attributes",
    "highlight",
    "time_of_day",
)
# Base probability of each attribute given the (primary) scene; time of day and the secondary scene add more.
ATTR_BASE: dict[str, dict[str, float]] = {
    "beach": {"water": 1.0, "people": 0.55, "boats": 0.4, "buildings": 0.2, "trees": 0.2, "clouds": 0.4},
    "mountain": {"mountains": 1.0, "people": 0.35, "snow": 0.35, "trees": 0.45, "buildings": 0.15, "clouds": 0.5},
    "city": {"buildings": 1.0, "people": 0.65, "trees": 0.2, "clouds": 0.35, "boats": 0.05},
    "forest": {"trees": 1.0, "people": 0.3, "snow": 0.08, "clouds": 0.2, "buildings": 0.08},
    "desert": {"people": 0.3, "buildings": 0.1, "clouds": 0.15, "trees": 0.05},
    "snow": {"snow": 1.0, "people": 0.45, "trees": 0.4, "mountains": 0.55, "buildings": 0.2, "clouds": 0.45},
    "lake": {
        "water": 1.0,
        "boats": 0.45,
        "trees": 0.45,
        "people": 0.35,
        "mountains": 0.45,
        "buildings": 0.15,
        "clouds": 0.4,
    },
    "countryside": {"trees": 0.6, "buildings": 0.35, "people": 0.3, "clouds": 0.5},
}
SCENE_WORDS: dict[str, list[str]] = {
    "beach": ["beach", "seaside", "shore", "coast", "sandy bay", "beachfront"],
    "mountain": ["mountains", "peaks", "alpine trail", "summit", "ridge", "high pass"],
    "city": ["city", "downtown", "old town", "streets", "city centre", "skyline"],
    "forest": ["forest", "woods", "woodland trail", "pine forest", "the trees"],
    "desert": ["desert", "dunes", "sand dunes", "the dunes", "desert camp"],
    "snow": ["snowy slopes", "ski resort", "winter wonderland", "snowfield", "fresh powder"],
    "lake": ["lake", "lakeside", "lakeshore", "the lake", "lake view"],
    "countryside": ["countryside", "farmland", "rolling hills", "village fields", "the fields"],
}
ATTR_PHRASES: dict[str, list[str]] = {
    "water": ["by the water", "clear water", "blue water"],
    "people": ["with friends", "with the family", "crowds everywhere", "my partner posing"],
    "boats": ["boats in the harbour", "sailboats", "a little fishing boat", "kayaks"],
    "buildings": ["old houses", "lovely architecture", "tall buildings", "a tiny chapel"],
    "snow": ["snow everywhere", "fresh snow", "snowfall"],
    "trees": ["tall trees", "pine trees", "green trees"],
    "sunset": ["at sunset", "golden hour", "the sun going down", "evening glow"],
    "night": ["at night", "after dark", "night lights", "late evening"],
    "mountains": ["mountain views", "peaks in the distance", "the mountains behind"],
    "clouds": ["cloudy sky", "some clouds", "overcast"],
}
OPENERS = [
    "",
    "",
    "Loved the",
    "Beautiful",
    "Morning at the",
    "Another day at the",
    "View of the",
    "Exploring the",
    "Lazy afternoon at the",
    "Finally made it to the",
    "Quick stop at the",
]
VAGUE = [
    "Great day!",
    "Memories",
    "Day 3",
    "So happy here",
    "Wish you were here",
    "IMG",
    "Best trip ever",
    "No words",
    "Throwback",
    "Weekend vibes",
    "Can't wait to come back",
]
SIZES = [
    (160, 120),
    (240, 160),
    (256, 256),
    (320, 240),
    (320, 180),
    (360, 240),
    (400, 300),
    (480, 320),
    (480, 270),
    (512, 384),
    (640, 480),
    (640, 360),
    (240, 320),
    (300, 400),
    (360, 480),
    (200, 300),
]


def _attributes(scene: str, secondary: str | None, tod: str, season: str, rng: np.random.Generator) -> set[str]:
    attrs = {a for a, p in ATTR_BASE[scene].items() if rng.random() < p}
    if secondary in ("beach", "lake"):
        attrs.add("water")
        if rng.random() < 0.35:
            attrs.add("boats")
    if secondary == "city":
        attrs.add("buildings")
    if secondary == "mountain":
        attrs.add("mountains")
    if secondary == "forest":
        attrs.add("trees")
    if "boats" in attrs:
        attrs.add("water")
    if season == "winter" and scene in ("mountain", "forest", "countryside", "lake") and rng.random() < 0.4:
        attrs.add("snow")
    if tod != "day":
        attrs.add(tod)
    return attrs


def _caption(scene: str, attrs: set[str], dest: Destination, rng: np.random.Generator) -> tuple[str, str]:
    """A caption and its kind (missing, vague, misleading, normal): real captions are often unhelpful."""
    u = rng.random()
    if u < 0.12:
        return "", "missing"
    if u < 0.24:
        return str(rng.choice(VAGUE)), "vague"
    kind = "normal"
    if u < 0.32:  # misleading: talks about another scene (a plan, a memory, a joke)
        scene = str(rng.choice([s for s in SCENES if s != scene]))
        kind = "misleading"
    words = SCENE_WORDS[scene]
    opener = str(rng.choice(OPENERS))
    core = str(rng.choice(words))
    text = f"{opener} {core}".strip() if opener else core[0].upper() + core[1:]
    if rng.random() < 0.45:
        text += f" in {dest.name}"
    extra = [str(a) for a in rng.permutation(sorted(attrs)) if rng.random() < 0.35]
    for a in extra[:2]:
        text += ", " + str(rng.choice(ATTR_PHRASES[a]))
    if rng.random() < 0.3:
        text += "!"
    return text, kind


def _tags(scene: str, attrs: set[str], dest: Destination, rng: np.random.Generator) -> str:
    tags: list[str] = []
    if rng.random() < 0.25:
        return ""
    if rng.random() < 0.6:
        tags.append(scene)
    tags += [a for a in sorted(attrs) if rng.random() < 0.3]
    tags += [t for t in dest.tags if rng.random() < 0.3]
    if rng.random() < 0.3:
        tags.append(str(rng.choice(["travel", "vacation", "holiday", "wanderlust", "instatravel"])))
    if rng.random() < 0.05:
        tags.append(str(rng.choice(SCENES)))  # noise
    return ";".join(dict.fromkeys(t.replace(";", " ") for t in tags))


def _season_month(pref: str, rng: np.random.Generator) -> int:
    if pref == "summer":
        return int(rng.choice([5, 6, 7, 8, 9]))
    if pref == "winter":
        return int(rng.choice([12, 1, 2, 3]))
    return int(rng.integers(1, 13))


REGIONS: tuple[str, ...] = ("africa-middle-east", "americas", "asia-pacific", "europe")


def destination_region(d: Destination) -> str:
    """The world region of a destination (from its coordinates): travellers favour some regions over others."""
    if d.longitude < -30:
        return "americas"
    if d.longitude > 60:
        return "asia-pacific"
    return "europe" if d.latitude > 34 and d.longitude < 45 else "africa-middle-east"


def destination_popularity() -> np.ndarray:
    """A fixed long-tailed popularity per catalog destination (Zipf-like, order unrelated to kind): a few places
    draw most travellers, as in real travel data."""
    n = len(DESTINATIONS)
    rank = (np.arange(n) * 17) % n  # a fixed shuffle: catalog order groups destinations by kind
    return 1.0 / (rank + 2.0) ** 0.8


# Seasons of each kind of place (northern-hemisphere months; a trip's month weighs its destinations by this).
KIND_SEASON: dict[str, dict[str, float]] = {
    "beach": {"summer": 2.5, "winter": 0.5}, "lake": {"summer": 2.0, "winter": 0.6},
    "countryside": {"summer": 1.6, "winter": 0.7}, "snow": {"summer": 0.25, "winter": 3.0},
    "mountain": {"summer": 1.4, "winter": 1.2}, "desert": {"summer": 0.5, "winter": 2.0},
    "city": {"summer": 1.0, "winter": 1.0}, "forest": {"summer": 1.3, "winter": 0.8},
}
ROUTE_KM = 400.0  # places of one trip are at most this far apart (the trip segmenter's default jump)


def catalog_distances() -> np.ndarray:
    """Distances in km between every two catalog destinations."""
    lat = np.array([d.latitude for d in DESTINATIONS])
    lon = np.array([d.longitude for d in DESTINATIONS])
    return haversine_km_array(lat[:, None], lon[:, None], lat[None, :], lon[None, :])


def trip_successors() -> np.ndarray:
    """For each destination, the two destinations travellers typically visit on their next trip (a fixed draw, the
    same for every sample): the first-order structure a sequence model can learn from trip histories."""
    rng = np.random.default_rng(20240)
    n = len(DESTINATIONS)
    return np.array([rng.choice([j for j in range(n) if j != i], size=2, replace=False) for i in range(n)])


def _season_of(month: int) -> str:
    return "winter" if month in (11, 12, 1, 2, 3) else "summer"


def _trip_route(u: int, first_trip: bool, last_place: int | None, month: int, ctx: dict[str, Any],
                rng: np.random.Generator) -> list[int]:
    """The destinations of one trip, in visiting order: the first chosen by taste, home region, popularity,
    season, distance from the last trip and the typical next trip; then, often, nearby places (within ROUTE_KM),
    the closest and most popular first."""
    kind_season = np.array([KIND_SEASON[d.kind][_season_of(month)] for d in DESTINATIONS])
    w = ctx["base"][u] * kind_season * np.where(ctx["visited"][u], 0.15, 1.0)
    if not first_trip and last_place is not None:
        w = w * (0.35 + np.exp(-ctx["dist"][last_place] / 1500.0))
        if rng.random() < 0.45:  # a typical next trip, when it is still new to the traveller
            succ = [j for j in ctx["succ"][last_place] if not ctx["visited"][u][j]]
            if succ:
                w = np.zeros_like(w)
                w[succ] = 1.0
    route = [int(rng.choice(len(w), p=w / w.sum()))]
    while len(route) < 3 and rng.random() < 0.65:
        here = route[-1]
        near = [j for j in range(len(w)) if j not in route and ctx["dist"][here][j] <= ROUTE_KM]
        if not near:
            break
        nw = np.array([ctx["popularity"][j] * math.exp(-ctx["dist"][here][j] / 150.0) for j in near])
        route.append(int(near[int(rng.choice(len(near), p=nw / nw.sum()))]))
    for j in route:
        ctx["visited"][u][j] = True
    return route


def _photo_record(uid: str, u: int, dest: Destination, taken: datetime, season: str, ctx: dict[str, Any],
                  rng: np.random.Generator) -> dict[str, Any]:
    """One photo at `dest` (scene from the place's mix, attributes, labels, caption, size, coordinates)."""
    hour = (taken.hour + int(rng.integers(0, 15))) % 24
    taken = taken.replace(hour=hour)
    tod = "sunset" if hour in (18, 19) else "night" if hour >= 20 or hour < 6 else "day"
    scenes, weights = zip(*dest.mix, strict=True)
    wts = np.array(weights) / np.sum(weights)
    scene = str(rng.choice(scenes, p=wts))
    if scene == "snow" and season == "summer" and dest.kind != "snow":
        scene = "mountain"
    secondary = None
    if rng.random() < 0.35:
        others = [s for s in scenes if s != scene] or [str(rng.choice(SCENES))]
        secondary = str(rng.choice(others))
    attrs = _attributes(scene, secondary, tod, season, rng)
    quality = float(np.clip(rng.normal(0.35 + 0.5 * ctx["skill"][u], 0.2), 0.0, 1.0))
    logit = (-2.0 + 3.0 * quality + 1.0 * (tod == "sunset") + 0.9 * (SCENES.index(scene) in ctx["top_kinds"][u])
             + 0.4 * ("people" in attrs) - 0.6 * (tod == "night"))
    highlight = int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
    caption, caption_kind = _caption(scene, attrs, dest, rng)
    width, height = SIZES[int(rng.integers(len(SIZES)))]
    return {"user_id": uid, "dest": dest, "scene": scene, "secondary": secondary, "attrs": attrs, "tod": tod,
            "quality": quality, "highlight": highlight, "caption": caption, "caption_kind": caption_kind,
            "tags": _tags(scene, attrs, dest, rng), "taken_at": taken, "size": (width, height),
            "seed": int(rng.integers(0, 2**31 - 1)), "png": bool(rng.random() < 0.2),
            "lat": dest.latitude + float(rng.normal(0, 0.03)), "lon": dest.longitude + float(rng.normal(0, 0.03))}


def _plan(photos: int, users: int, seed: int) -> list[dict[str, Any]]:
    """The photo records (no pixels yet): users, trips, scenes, attributes, labels, captions, times, places.

    Travel has the structure of real histories: a trip visits one to three places within ROUTE_KM of each other
    (nearby places first), the next trip tends to start near the last one or at one of its typical successors
    (`trip_successors`), travellers keep to a home region, and the season of a trip weighs the kinds of places
    (`KIND_SEASON`). Photo content follows the place visited, as before."""
    rng = np.random.default_rng(seed)
    dest_kind = np.array([SCENES.index(d.kind) for d in DESTINATIONS])
    user_ids = [f"u{i:03d}" for i in range(users)]
    prefs = rng.dirichlet(np.full(len(SCENES), 0.45), size=users)
    # Tastes photos cannot show (where in the world a traveller goes, where they went last) and places everybody
    # goes: drawn apart (route_rng) so the photo draws keep their stream.
    route_rng = np.random.default_rng([seed, 1])
    dest_region = np.array([REGIONS.index(destination_region(d)) for d in DESTINATIONS])
    region_prefs = route_rng.dirichlet(np.full(len(REGIONS), 0.3), size=users)
    popularity = destination_popularity()
    seasons = rng.choice(["summer", "winter", "any"], size=users, p=[0.45, 0.2, 0.35])
    skill = rng.beta(2.0, 2.0, size=users)
    share = rng.dirichlet(np.full(users, 2.0))
    counts = np.maximum(1, np.floor(share * photos)).astype(int)
    while counts.sum() > photos:
        counts[int(np.argmax(counts))] -= 1
    while counts.sum() < photos:
        counts[int(rng.integers(users))] += 1
    ctx: dict[str, Any] = {
        "base": (prefs[:, dest_kind] + 0.02) * (region_prefs[:, dest_region] + 0.03) * popularity,
        "visited": np.zeros((users, len(DESTINATIONS)), bool), "dist": catalog_distances(),
        "succ": trip_successors(), "popularity": popularity, "skill": skill,
        "top_kinds": [set(np.argsort(p)[-2:].tolist()) for p in prefs]}
    records: list[dict[str, Any]] = []
    epoch = datetime(2022, 1, 1, tzinfo=UTC)
    for u, uid in enumerate(user_ids):
        remaining = int(counts[u])
        trip_start = epoch + timedelta(days=float(rng.uniform(0, 120)))
        last_place: int | None = None
        first = True
        while remaining > 0:
            n = min(remaining, int(rng.integers(4, 22)))
            remaining -= n
            month = _season_month(str(seasons[u]), rng)
            route = _trip_route(u, first, last_place, month, ctx, route_rng)
            first, last_place = False, route[-1]
            year = trip_start.year + (1 if month < trip_start.month else 0)
            start = datetime(year, month, int(rng.integers(1, 25)), 8, tzinfo=UTC)
            if start < trip_start:  # trips never overlap: the next one starts after the last one ended
                start = start.replace(year=start.year + 1)
            trip_start = start + timedelta(days=int(rng.integers(20, 200)))
            season = "winter" if month in (12, 1, 2, 3) else "summer"
            days = max(int(rng.integers(1, 8)), len(route))
            times = sorted(rng.uniform(0, days * 24 * 3600, size=n))
            for i, t in enumerate(times):
                # Places in visiting order, each for an equal share of the trip's photos (at least one each).
                dest = DESTINATIONS[route[min(len(route) - 1, i * len(route) // n)]]
                records.append(_photo_record(uid, u, dest, start + timedelta(seconds=float(t)), season, ctx, rng))
    order = rng.permutation(len(records))
    records = [records[i] for i in order]
    for i, r in enumerate(records):
        r["photo_id"] = f"p{seed:02d}-{i:05d}"
    return records


def _label_row(r: dict[str, Any], rng: np.random.Generator) -> dict[str, str]:
    """Observed labels: some missing, a little noise (what annotators gave, not the truth)."""
    scene = r["scene"]
    if rng.random() < 0.04:
        scene = str(rng.choice(SCENES))
    attrs = set(r["attrs"])
    for a in ATTRIBUTES:
        if rng.random() < 0.02:
            attrs ^= {a}
    return {
        "scene": "" if rng.random() < 0.08 else scene,
        "attributes": "" if rng.random() < 0.1 else (";".join(a for a in ATTRIBUTES if a in attrs) or "[]"),
        "highlight": "" if rng.random() < 0.15 else str(r["highlight"]),
        "time_of_day": "" if rng.random() < 0.05 else r["tod"],
    }


def _render_one(job: tuple[str, PhotoSpec, bool]) -> None:
    path, spec, png = job
    img = render_photo(spec)
    if png:
        img.save(path, format="PNG", compress_level=1)
    else:
        quality = 60 + spec.seed % 36
        img.save(path, format="JPEG", quality=quality)


def _broken_rows(out: Path, template: dict[str, str]) -> list[dict[str, str]]:
    """A few deliberately unusable rows, so that quarantine shows in every run (docs/data-format.md)."""
    img = out / "images" / "broken"
    img.mkdir(parents=True, exist_ok=True)
    (img / "empty.jpg").write_bytes(b"")
    (img / "notes.jpg").write_text("these are my travel notes, not a photo\n", encoding="utf-8")
    good = out / template["image"]
    data = good.read_bytes()
    (img / "truncated.jpg").write_bytes(data[: max(64, len(data) // 3)])
    rows = []
    for k, (image, change) in enumerate(
        [
            ("images/broken/missing.jpg", {}),
            ("images/broken/empty.jpg", {}),
            ("images/broken/notes.jpg", {}),
            ("images/broken/truncated.jpg", {}),
            (template["image"], {"photo_id": template["photo_id"]}),
            (template["image"], {"taken_at": "sometime last summer"}),
        ]
    ):
        row = dict(template)
        row.update({"photo_id": f"{template['photo_id']}-broken{k}", "image": image})
        row.update(change)
        rows.append(row)
    return rows


def _render_all(jobs: list[tuple[str, PhotoSpec, bool]], workers: int | None,
                progress: Callable[[int, int], None] | None) -> None:
    """Render every photo, in worker processes when there are many; `progress(done, total)` every 25."""
    workers = workers or min(len(jobs) // 100 + 1, os.cpu_count() or 1)
    done = 0
    if workers > 1:
        # forkserver: never fork a process that may hold a JVM gateway and its threads (tests, notebooks)
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            for _ in pool.map(_render_one, jobs, chunksize=16):
                done += 1
                if progress and done % 25 == 0:
                    progress(done, len(jobs))
    else:
        for job in jobs:
            _render_one(job)
            done += 1
            if progress and done % 25 == 0:
                progress(done, len(jobs))
    if progress:
        progress(len(jobs), len(jobs))


def _write_files(out: Path, rows: list[dict[str, str]], seed: int) -> None:
    """manifest.csv, labels.yaml, destinations.csv and the README that says the collection is synthetic."""
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(MANIFEST_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    dump_labels(SAMPLE_LABELS, out / "labels.yaml")
    with open(out / "destinations.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(DESTINATION_COLUMNS)
        for d in DESTINATIONS:
            writer.writerow(
                [
                    d.destination_id,
                    d.name,
                    d.country,
                    d.kind,
                    d.description,
                    ";".join(d.tags),
                    f"{d.latitude:.4f}",
                    f"{d.longitude:.4f}",
                ]
            )
    (out / "README.txt").write_text(
        f"SYNTHETIC DATA generated by `wanderlens sample` (seed {seed}): procedural images, template captions\n"
        "and invented users. Only the destination names are real places. Not photographs of anything.\n",
        encoding="utf-8",
    )


def generate_sample(
    out_dir: str | Path,
    photos: int = 2000,
    users: int = 60,
    seed: int = 0,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write a synthetic collection to `out_dir`: manifest.csv, labels.yaml, destinations.csv, images/.

    Returns a summary (counts per scene, broken rows, paths). `progress(done, total)` is called while rendering.
    """
    if photos < 1 or users < 1:
        raise InputError(f"sample needs at least 1 photo and 1 user (got photos={photos}, users={users})")
    users = min(users, photos)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    n_broken = 6 if photos >= 60 else 0
    records = _plan(photos - n_broken, users, seed)
    label_rng = np.random.default_rng(seed + 1_000_003)
    rows: list[dict[str, str]] = []
    jobs: list[tuple[str, PhotoSpec, bool]] = []
    for r in records:
        sub = f"images/{r['user_id']}"
        (out / sub).mkdir(exist_ok=True)
        rel = f"{sub}/{r['photo_id']}.{'png' if r['png'] else 'jpg'}"
        w, h = r["size"]
        spec = PhotoSpec(r["scene"], r["secondary"], frozenset(r["attrs"]), r["tod"], r["quality"], w, h, r["seed"])
        jobs.append((str(out / rel), spec, r["png"]))
        missing_geo = label_rng.random() < 0.05
        row = {
            "photo_id": r["photo_id"],
            "user_id": r["user_id"],
            "image": rel,
            "caption": r["caption"],
            "tags": r["tags"],
            "taken_at": r["taken_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "latitude": "" if missing_geo else f"{r['lat']:.5f}",
            "longitude": "" if missing_geo else f"{r['lon']:.5f}",
            "destination_id": r["dest"].destination_id,
        }
        row.update(_label_row(r, label_rng))
        rows.append(row)
    _render_all(jobs, workers, progress)
    if n_broken:
        template = next((r for r in rows if r["image"].endswith(".jpg")), rows[0])
        rows += _broken_rows(out, template)
    _write_files(out, rows, seed)
    by_scene: dict[str, int] = {}
    for r in records:
        by_scene[r["scene"]] = by_scene.get(r["scene"], 0) + 1
    return {
        "out_dir": str(out),
        "manifest": str(out / "manifest.csv"),
        "labels": str(out / "labels.yaml"),
        "destinations": str(out / "destinations.csv"),
        "photos": len(rows),
        "rendered": len(records),
        "broken": n_broken,
        "users": users,
        "destinations_count": len(DESTINATIONS),
        "by_scene": by_scene,
        "seed": seed,
    }
