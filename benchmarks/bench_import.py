"""Benchmark: `import_photos` on 1,000 real photos vs a plain loop that only opens each file and reads its EXIF.

The folder is generated once (under runs/bench-import/, reused while the parameters match): the coco-cc57
JPEGs cycled, each given EXIF with piexif as a camera writes it (camera, embedded 160x120 thumbnail,
DateTimeOriginal, 70% with OffsetTimeOriginal, GPS for 95% at real destinations in each hemisphere), 5 users
on trips of photos minutes apart, ~6% of photos in 3-shot bursts (the same shot seconds apart), a few
Takeout-style `.json` and `.txt` sidecars.

- plain loop: walk the folder, `Image.open(path).getexif()` for each file (no GPS/time interpretation, no output);
- import: the whole `import_photos` (walk, sidecars, EXIF/XMP/IPTC, time zones, places, inheritance, bursts with
  perceptual hashes of the burst candidates, manifest + report written).

Each side: best of `--repeats` warm runs (the one-time gazetteer/time-zone loads are paid in the first import call
of the process and printed separately as "cold"). Last line: `import_vs_exif_loop: <loop time / import time>`
(1.0: the import costs no more than opening the files and reading their EXIF; goal >= 0.7).

    .venv/bin/python benchmarks/bench_import.py [--photos 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

from _timing import best_wall_time

REPO = Path(__file__).resolve().parents[1]
DESTINATIONS = [  # (lat, lon, UTC offset in May-September)
    (48.8584, 2.2945, "+02:00"), (45.7640, 4.8357, "+02:00"), (41.8902, 12.4922, "+02:00"),
    (40.6892, -74.0445, "-04:00"), (37.8199, -122.4783, "-07:00"), (-33.8568, 151.2153, "+10:00"),
    (-22.9711, -43.1822, "-03:00"), (35.6586, 139.7454, "+09:00"), (-33.9249, 18.4241, "+02:00"),
    (64.1466, -21.9426, "+00:00"),
]


def _shared() -> Path:
    for candidate in (os.environ.get("WANDERLENS_SHARED"), REPO.parent / "shared", "/work/shared"):
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    sys.exit("shared/ data folder not found (set WANDERLENS_SHARED)")


def _thumbnail(source: Path) -> bytes:
    """A 160x120-bounded JPEG of the photo: what cameras and phones embed in EXIF (IFD1)."""
    from PIL import Image

    with Image.open(source) as im:
        im.thumbnail((160, 120))
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=75)
    return buf.getvalue()


def _exif(piexif, when: datetime, offset: str | None, pos: tuple[float, float] | None, thumb: bytes) -> bytes:
    def dms(v: float) -> tuple:
        v = abs(v)
        d, m = int(v), int((abs(v) - int(v)) * 60)
        return ((d, 1), (m, 1), (round((v - d - m / 60) * 3600 * 1000), 1000))

    exif = {piexif.ExifIFD.DateTimeOriginal: when.strftime("%Y:%m:%d %H:%M:%S").encode()}
    if offset:
        exif[piexif.ExifIFD.OffsetTimeOriginal] = offset.encode()
    data = {"0th": {piexif.ImageIFD.Make: b"Canon", piexif.ImageIFD.Model: b"EOS R6", piexif.ImageIFD.Orientation: 1},
            "Exif": exif, "1st": {piexif.ImageIFD.Compression: 6}, "thumbnail": thumb}
    if pos is not None:
        data["GPS"] = {1: b"N" if pos[0] >= 0 else b"S", 2: dms(pos[0]), 3: b"E" if pos[1] >= 0 else b"W",
                       4: dms(pos[1])}
    return piexif.dump(data)


def generate(folder: Path, photos: int, seed: int = 0) -> None:
    """Write the benchmark folder (users/trips/bursts as described in the module docstring)."""
    import piexif

    sources = sorted((_shared() / "data" / "coco-cc57" / "images").glob("*.jpg"))
    thumbs = {src: _thumbnail(src) for src in sources}
    rng = random.Random(seed)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    n = 0
    while n < photos:
        user = f"user{n % 5}"
        lat, lon, offset = rng.choice(DESTINATIONS)
        clock = datetime(2024, 5, 1) + timedelta(days=rng.randrange(120), hours=8)
        for _ in range(min(photos - n, rng.randint(8, 25))):
            clock += timedelta(minutes=rng.randint(3, 50))
            shots = 3 if rng.random() < 0.02 and photos - n >= 3 else 1
            pos = None if rng.random() < 0.05 else (lat + rng.uniform(-0.03, 0.03), lon + rng.uniform(-0.03, 0.03))
            src = sources[n % len(sources)]
            for k in range(shots):
                path = tmp / user / f"IMG_{n:05d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, path)
                when = clock + timedelta(seconds=2 * k)
                exif = _exif(piexif, when, offset if rng.random() < 0.7 else None, pos, thumbs[src])
                piexif.insert(exif, str(path))
                if rng.random() < 0.03:
                    path.with_suffix(".txt").write_text("A day out", encoding="utf-8")
                elif rng.random() < 0.03:
                    Path(f"{path}.json").write_text(json.dumps({"title": path.name, "description": "From Takeout",
                                                                "geoData": {"latitude": 0.0, "longitude": 0.0}}))
                n += 1
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def _exif_of_each_file(folder: Path, read) -> int:
    """`read(exif)` summed over every file of the folder that Pillow opens; sidecars are not images and are skipped."""
    from PIL import Image

    count = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            try:
                with Image.open(os.path.join(dirpath, name)) as im:
                    count += read(im.getexif())
            except Exception:  # noqa: BLE001 - sidecars are not images; the loops just skip them
                pass
    return count


def exif_loop(folder: Path) -> int:
    """The baseline: open every file and read its EXIF with Pillow; nothing else."""
    return _exif_of_each_file(folder, lambda exif: len(exif) > 0)


def exif_tags_loop(folder: Path) -> int:
    """For reference (not the ratio's baseline): Pillow reading the tags import uses, i.e. IFD0 plus the Exif and
    GPS sub-IFDs (time taken, offset, position), with nothing interpreted."""
    from PIL import ExifTags

    return _exif_of_each_file(folder, lambda exif: len(exif.get_ifd(ExifTags.IFD.Exif))
                              + len(exif.get_ifd(ExifTags.IFD.GPSInfo)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", type=Path, default=REPO / "runs" / "bench-import")
    args = parser.parse_args()
    folder = args.folder / f"photos-{args.photos}-v2"
    if not folder.is_dir():
        t0 = time.perf_counter()
        generate(folder, args.photos)
        print(f"generated {args.photos} photos in {folder} ({time.perf_counter() - t0:.1f} s, kept for next runs)")
    from wanderlens.data.photos import import_photos

    out = Path(tempfile.mkdtemp(prefix="bench-import-"))
    try:
        t0 = time.perf_counter()
        report = import_photos(folder, out / "cold")
        cold = time.perf_counter() - t0
        n = report.usable
        loop_s = best_wall_time(lambda: exif_loop(folder), args.repeats)
        tags_s = best_wall_time(lambda: exif_tags_loop(folder), args.repeats)
        import_s = best_wall_time(lambda: import_photos(folder, out / "warm"), args.repeats)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} {load[1]:.1f} (shared with other work)")
    print(f"folder: {report.files_found} files, {n} usable photos, {report.unusable} unusable, "
          f"{report.bursts} bursts ({report.photos_in_bursts} photos), {report.positions_inherited} positions "
          f"inherited, {report.time_sources}")
    print(f"{'':<28}{'total s':>10}{'ms/photo':>10}")
    print(f"{'plain loop (open + EXIF)':<28}{loop_s:>10.3f}{1000 * loop_s / n:>10.3f}")
    print(f"{'Pillow, + Exif/GPS IFDs':<28}{tags_s:>10.3f}{1000 * tags_s / n:>10.3f}   (reference only)")
    print(f"{'import_photos (warm)':<28}{import_s:>10.3f}{1000 * import_s / n:>10.3f}")
    print(f"{'import_photos (cold, 1st)':<28}{cold:>10.3f}{1000 * cold / n:>10.3f}")
    print(f"import_vs_exif_loop: {loop_s / import_s:.2f}")


if __name__ == "__main__":
    main()
