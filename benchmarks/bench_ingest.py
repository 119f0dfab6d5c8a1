"""Benchmark: ingestion through Spark (local[2]) vs a plain Python loop reading the same headers, in one run.

Both sides do the same per-image work (`wanderlens.data.probe.probe_image`: read, sha256, header, cap check,
1/8-scale JPEG decode / full PNG decode). The Spark side is the whole `ingest` job (manifest read, row checks,
executor probing, duplicate ranking, both Parquet writes); `spark probe only` isolates the executor work.
Each figure is the best of `--repeats` warm runs (the JVM and Python workers are warmed on a first run).
Measured at 2,000, 10,000 and 40,000 photos (one sample of the largest size, generated once; each smaller size is
its first rows), each against the plain loop on the same rows. The last line is `ingest_vs_plain_loop_40k: <ratio>`
(plain-loop seconds / Spark-ingest seconds at the largest size; > 1: Spark is faster).

    .venv/bin/python benchmarks/bench_ingest.py [--sizes 2000,10000,40000] [--repeats 2] [--master local[2]]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
import time
from pathlib import Path

from _timing import best_wall_time


def plain_loop(manifest: Path, decode: bool) -> int:
    """Probe every image of the manifest one after the other in this process; returns the usable count."""
    from wanderlens.data.probe import probe_image

    base = manifest.parent
    ok = 0
    with open(manifest, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            ok += probe_image(str(base / row["image"]), decode=decode).reason is None
    return ok


def spark_probe_only(spark, manifest: Path, decode: bool) -> int:
    """Only the executor probing of ingest (the `ImageProbe` stage), counted: no validation rules, no writes."""
    from pyspark.sql import functions as F

    from wanderlens.data.image_probe import ImageProbe
    from wanderlens.data.ingest import read_manifest

    paths = read_manifest(spark, manifest).select(
        F.concat(F.lit(str(manifest.parent) + "/"), F.col("image")).alias("image_path")
    )
    probed = ImageProbe(decode=decode).transform(paths.repartition(spark.sparkContext.defaultParallelism))
    return probed.where(F.col("probe_reason").isNull()).count()


def sub_manifest(manifest: Path, rows: int) -> Path:
    """The first `rows` rows of `manifest`, written beside it (same image folder), so every size shares one sample."""
    out = manifest.with_name(f"manifest-{rows}.csv")
    with open(manifest, encoding="utf-8", newline="") as src, open(out, "w", encoding="utf-8", newline="") as dst:
        reader = csv.reader(src)
        writer = csv.writer(dst)
        writer.writerow(next(reader))
        for i, row in enumerate(reader):
            if i >= rows:
                break
            writer.writerow(row)
    return out


def measure(spark, manifest: Path, work: Path, repeats: int, modes: tuple[bool, ...]) -> dict[str, tuple]:
    """Per mode: (plain-loop s, Spark probe-only s, whole Spark ingest s), each the best of `repeats`."""
    from wanderlens.data.ingest import ingest

    rows = {}
    for decode in modes:
        mode = "decode" if decode else "header"
        loop_s = best_wall_time(lambda d=decode: plain_loop(manifest, d), repeats)
        probe_s = best_wall_time(lambda d=decode: spark_probe_only(spark, manifest, d), repeats)
        ingest_s = best_wall_time(lambda d=decode: ingest(spark, manifest, work / "out", decode=d), repeats)
        rows[mode] = (loop_s, probe_s, ingest_s)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000,40000", help="comma-separated photo counts (one sample of "
                        "the largest size is generated; smaller sizes take its first rows)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--keep", type=Path, default=None, help="folder to keep the generated sample in (reused)")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))

    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.session import get_spark

    work = Path(tempfile.mkdtemp(prefix="wl-bench-ingest-"))
    sample = (args.keep / f"sample-{sizes[-1]}") if args.keep else work / "sample"
    try:
        t0 = time.perf_counter()
        if not (sample / "manifest.csv").is_file():
            generate_sample(sample, photos=sizes[-1], users=max(2, sizes[-1] // 35), seed=0)
        gen_s = time.perf_counter() - t0
        spark = get_spark(master=args.master, app_name="bench-ingest")
        ingest(spark, sub_manifest(sample / "manifest.csv", sizes[0]), work / "warm")  # JVM and workers warm
        results = {}
        for size in sizes:
            manifest = sub_manifest(sample / "manifest.csv", size)
            # Header-only mode at the smallest size only: it shows the decode's share, not the scaling.
            results[size] = measure(spark, manifest, work, args.repeats, (True, False) if size == sizes[0] else (True,))
            print(f"  measured {size} photos", flush=True)
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, master {args.master}, load average {load[0]:.1f} {load[1]:.1f} "
              f"{load[2]:.1f} (other work running: {'yes' if load[1] > (os.cpu_count() or 1) * 0.5 else 'no'})")
        print(f"sample: {sizes[-1]} photos generated once ({gen_s:.1f} s, 0 if reused); smaller sizes are its first "
              f"rows; best of {args.repeats} warm runs each")
        print(f"{'photos':>7} {'mode':<8}{'plain loop':>16}{'spark probe only':>20}{'spark ingest':>16}"
              f"{'ingest/loop':>13}")
        for size, rows in results.items():
            for mode, (loop_s, probe_s, ingest_s) in rows.items():
                print(f"{size:>7} {mode:<8}{size / loop_s:>10.0f} img/s{size / probe_s:>14.0f} img/s"
                      f"{size / ingest_s:>10.0f} img/s{loop_s / ingest_s:>12.2f}x")
        loop_s, _, ingest_s = results[sizes[-1]]["decode"]
        print(f"ingest_vs_plain_loop_{sizes[-1] // 1000}k: {loop_s / ingest_s:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
