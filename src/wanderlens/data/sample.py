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


def _plan(photos: int, users: int, seed: int) -> list[dict[str, Any]]:
    """The photo records (no pixels yet): users, trips, scenes, attributes, labels, captions, times, places."""
    rng = np.random.default_rng(seed)
    dest_kind = np.array([SCENES.index(d.kind) for d in DESTINATIONS])
    user_ids = [f"u{i:03d}" for i in range(users)]
    prefs = rng.dirichlet(np.full(len(SCENES), 0.45), size=users)
    # Tastes photos cannot show (where in the world a traveller goes) and places everybody goes: the part of the
    # choice only collaborative filtering and popularity can learn. Drawn apart so the photo draws stay as they were.
    taste_rng = np.random.default_rng([seed, 1])
    dest_region = np.array([REGIONS.index(destination_region(d)) for d in DESTINATIONS])
    region_prefs = taste_rng.dirichlet(np.full(len(REGIONS), 0.5), size=users)
    popularity = destination_popularity()
    seasons = rng.choice(["summer", "winter", "any"], size=users, p=[0.45, 0.2, 0.35])
    skill = rng.beta(2.0, 2.0, size=users)
    share = rng.dirichlet(np.full(users, 2.0))
    counts = np.maximum(1, np.floor(share * photos)).astype(int)
    while counts.sum() > photos:
        counts[int(np.argmax(counts))] -= 1
    while counts.sum() < photos:
        counts[int(rng.integers(users))] += 1
    records: list[dict[str, Any]] = []
    epoch = datetime(2022, 1, 1, tzinfo=UTC)
    for u, uid in enumerate(user_ids):
        remaining = int(counts[u])
        top_kinds = set(np.argsort(prefs[u])[-2:].tolist())
        trip_start = epoch + timedelta(days=float(rng.uniform(0, 120)))
        while remaining > 0:
            n = min(remaining, int(rng.integers(4, 22)))
            remaining -= n
            w = (prefs[u][dest_kind] + 0.02) * (region_prefs[u][dest_region] + 0.05) * popularity
            if seasons[u] == "winter":
                w = w * np.where(np.isin(dest_kind, [SCENES.index("snow"), SCENES.index("mountain")]), 2.0, 1.0)
            dest = DESTINATIONS[int(rng.choice(len(DESTINATIONS), p=w / w.sum()))]
            month = _season_month(str(seasons[u]), rng)
            year = trip_start.year + (1 if month < trip_start.month else 0)
            start = datetime(min(year, 2025), month, int(rng.integers(1, 25)), 8, tzinfo=UTC)
            trip_start = start + timedelta(days=int(rng.integers(20, 200)))
            season = "winter" if month in (12, 1, 2, 3) else "summer"
            days = int(rng.integers(1, 8))
            times = sorted(rng.uniform(0, days * 24 * 3600, size=n))
            scenes, weights = zip(*dest.mix, strict=True)
            wts = np.array(weights) / np.sum(weights)
            for t in times:
                taken = start + timedelta(seconds=float(t))
                hour = (taken.hour + int(rng.integers(0, 15))) % 24
                taken = taken.replace(hour=hour)
                tod = "sunset" if hour in (18, 19) else "night" if hour >= 20 or hour < 6 else "day"
                scene = str(rng.choice(scenes, p=wts))
                if scene == "snow" and season == "summer" and dest.kind != "snow":
                    scene = "mountain"
                secondary = None
                if rng.random() < 0.35:
                    others = [s for s in scenes if s != scene] or [str(rng.choice(SCENES))]
                    secondary = str(rng.choice(others))
                attrs = _attributes(scene, secondary, tod, season, rng)
                quality = float(np.clip(rng.normal(0.35 + 0.5 * skill[u], 0.2), 0.0, 1.0))
                logit = (
                    -2.0
                    + 3.0 * quality
                    + 1.0 * (tod == "sunset")
                    + 0.9 * (SCENES.index(scene) in top_kinds)
                    + 0.4 * ("people" in attrs)
                    - 0.6 * (tod == "night")
                )
                highlight = int(rng.random() < 1.0 / (1.0 + math.exp(-logit)))
                caption, caption_kind = _caption(scene, attrs, dest, rng)
                width, height = SIZES[int(rng.integers(len(SIZES)))]
                records.append(
                    {
                        "user_id": uid,
                        "dest": dest,
                        "scene": scene,
                        "secondary": secondary,
                        "attrs": attrs,
                        "tod": tod,
                        "quality": quality,
                        "highlight": highlight,
                        "caption": caption,
                        "caption_kind": caption_kind,
                        "tags": _tags(scene, attrs, dest, rng),
                        "taken_at": taken,
                        "size": (width, height),
                        "seed": int(rng.integers(0, 2**31 - 1)),
                        "png": bool(rng.random() < 0.2),
                        "lat": dest.latitude + float(rng.normal(0, 0.03)),
                        "lon": dest.longitude + float(rng.normal(0, 0.03)),
                    }
                )
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
    if n_broken:
        template = next((r for r in rows if r["image"].endswith(".jpg")), rows[0])
        rows += _broken_rows(out, template)
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
