"""Benchmark: ingestion through Spark (local[2]) vs a plain Python loop reading the same headers, in one run.

Both sides do the same per-image work (`wanderlens.data.probe.probe_image`: read, sha256, header, cap check,
1/8-scale JPEG decode / full PNG decode). The Spark side is the whole `ingest` job (manifest read, row checks,
executor probing, duplicate ranking, both Parquet writes); `spark probe only` isolates the executor work.
Each figure is the best of `--repeats` warm runs (the JVM and Python workers are warmed on a first run).
The last line is `ingest_vs_plain_loop: <ratio>` (plain-loop seconds / Spark-ingest seconds; > 1: Spark is faster).

    .venv/bin/python benchmarks/bench_ingest.py [--photos 2000] [--repeats 2] [--master local[2]]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()

    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.session import get_spark

    work = Path(tempfile.mkdtemp(prefix="wl-bench-ingest-"))
    try:
        t0 = time.perf_counter()
        generate_sample(work / "sample", photos=args.photos, users=max(2, args.photos // 35), seed=0)
        gen_s = time.perf_counter() - t0
        manifest = work / "sample" / "manifest.csv"
        spark = get_spark(master=args.master, app_name="bench-ingest")
        ingest(spark, manifest, work / "warm")  # JVM, codegen and Python workers warm
        rows = {}
        for decode in (True, False):
            mode = "decode" if decode else "header"
            loop_s = best_wall_time(lambda d=decode: plain_loop(manifest, d), args.repeats)
            probe_s = best_wall_time(lambda d=decode: spark_probe_only(spark, manifest, d), args.repeats)
            ingest_s = best_wall_time(lambda d=decode: ingest(spark, manifest, work / "out", decode=d), args.repeats)
            rows[mode] = (loop_s, probe_s, ingest_s)
        summary = ingest(spark, manifest, work / "out")
        n = summary["rows_in"]
        load = os.getloadavg()
        print(f"machine: {os.cpu_count()} CPUs, master {args.master}, load average {load[0]:.1f} {load[1]:.1f} "
              f"{load[2]:.1f} (other work running: {'yes' if load[1] > (os.cpu_count() or 1) * 0.5 else 'no'})")
        print(f"sample: {n} rows ({summary['rows_kept']} kept, {summary['rows_quarantined']} quarantined), "
              f"generated in {gen_s:.1f} s ({args.photos / gen_s:.0f} photos/s)")
        print(f"{'mode':<8}{'plain loop':>16}{'spark probe only':>20}{'spark ingest':>16}{'ingest/loop':>13}")
        for mode, (loop_s, probe_s, ingest_s) in rows.items():
            print(f"{mode:<8}{n / loop_s:>10.0f} img/s{n / probe_s:>14.0f} img/s{n / ingest_s:>10.0f} img/s"
                  f"{loop_s / ingest_s:>12.2f}x")
        loop_s, _, ingest_s = rows["decode"]
        print(f"ingest_vs_plain_loop: {loop_s / ingest_s:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
