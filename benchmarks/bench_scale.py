"""Scale benchmark: ingest + featurize + train on 1k, 2k, 4k and 8k sample photos on a local standalone cluster.

Each size runs as its own driver process (`python -m wanderlens.cluster.pipeline`) against the same cluster (2
workers, 1 core each), so the driver's memory is the driver's alone. Printed side by side: seconds per stage, time
per photo (the three stages' seconds / photos; JVM start excluded, shown apart) and the driver's peak memory
(Python RSS, JVM RSS, JVM heap), each as a ratio against the 1k run of the same invocation.
Goal: time per photo at 8k at most 1.25x that at 1k, driver memory flat. Last line `time_per_photo_8k_over_1k: <x>`.

    python benchmarks/bench_scale.py                              # sample of 8k photos generated once, reused
    python benchmarks/bench_scale.py --sizes 500,1000 --work runs/bench_scale_small
    python benchmarks/bench_scale.py --sizes 250,500,1000 --from-runs   # re-print from WORK/run-N/run.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("ingest", "featurize", "train")
# Same training setup at every size: the number of passes is fixed, so training work grows with the rows.
CONFIG = {
    "model": {"architecture": "mmoe", "expert_hidden": [64], "tower_hidden": [32], "num_experts": 3},
    "training": {"epochs": 3, "batch_size": 64, "learning_rate": 0.002, "seed": 0, "num_processes": 2},
}


def sample_manifests(work: Path, sizes: list[int], seed: int) -> dict[int, Path]:
    """One synthetic sample of max(sizes) photos (generated once), and a manifest of its first N rows per size."""
    from wanderlens.data.sample import generate_sample

    biggest = max(sizes)
    sample = work / f"sample-{biggest}"
    manifest = sample / "manifest.csv"
    if not manifest.is_file():
        t0 = time.perf_counter()
        print(f"generating a {biggest}-photo sample in {sample} (once) ...", flush=True)
        generate_sample(sample, photos=biggest, users=max(8, biggest // 33), seed=seed)
        print(f"  done in {time.perf_counter() - t0:.0f}s", flush=True)
    with open(manifest, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames or [], list(reader)
    out = {}
    for n in sizes:
        path = sample / f"manifest-{n}.csv"  # beside the images, so relative image paths resolve
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows[:n])
        out[n] = path
    return out


def run_size(n: int, manifest: Path, work: Path, master: str, config: Path) -> dict:
    """One driver process for `n` photos; returns its run.json plus the process's wall time."""
    out = work / f"run-{n}"
    if out.exists():
        import shutil

        shutil.rmtree(out)
    out.mkdir(parents=True)
    log = out / "driver.log"
    t0 = time.perf_counter()
    with open(log, "wb") as fh:
        rc = subprocess.run([sys.executable, "-m", "wanderlens.cluster.pipeline", "--manifest", str(manifest),
                             "--out", str(out), "--master", master, "--stages", ",".join(STAGES),
                             "--config", str(config)], stdout=fh, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"driver for {n} photos failed (exit {rc}); see {log}")
    run = json.loads((out / "run.json").read_text())
    run["wall_seconds"] = wall
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,2000,4000,8000", help="photo counts; the first is the baseline")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_scale")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-memory", default="2g")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--from-runs", action="store_true",
                        help="print the table from an earlier invocation's WORK/run-N/run.json instead of running")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[int, dict] = {}
    if args.from_runs:
        for n in sizes:
            runs[n] = json.loads((work / f"run-{n}" / "run.json").read_text())
        return report(runs, sizes, work)
    manifests = sample_manifests(work, sizes, args.seed)
    config = work / "config.yaml"
    config.write_text(json.dumps(CONFIG))  # JSON is YAML

    from wanderlens.cluster.standalone import StandaloneCluster

    cluster = StandaloneCluster(work / "cluster")
    with cluster:
        cluster.start(workers=args.workers, cores=1, memory=args.worker_memory, port=None, webui_port=None)
        print(f"cluster {cluster.master_url}: {args.workers} workers x 1 core x {args.worker_memory}", flush=True)
        for n in sizes:
            t0 = time.perf_counter()
            runs[n] = run_size(n, manifests[n], work, cluster.master_url, config)
            print(f"  {n} photos: {time.perf_counter() - t0:.0f}s", flush=True)
    return report(runs, sizes, work)


def report(runs: dict[int, dict], sizes: list[int], work: Path) -> int:
    """Print the side-by-side table and ratios against the first size; save WORK/results.json."""
    base = sizes[0]

    def per_photo(n: int) -> float:
        return sum(runs[n]["stages"][s]["seconds"] for s in STAGES) / n

    header = (f"{'photos':>7} {'kept':>6} {'ingest s':>9} {'featur. s':>9} {'train s':>8} {'jvm start s':>11} "
              f"{'ms/photo':>9} {'x base':>7} {'py RSS MB':>10} {'JVM RSS MB':>11} {'JVM heap MB':>12} {'x base':>7}")
    print()
    print(header)
    for n in sizes:
        r = runs[n]
        mem, base_mem = r["driver_memory"], runs[base]["driver_memory"]
        print(f"{n:>7} {r['stages']['ingest']['rows_kept']:>6} "
              + " ".join(f"{r['stages'][s]['seconds']:>{w}.1f}" for s, w in zip(STAGES, (9, 9, 8), strict=True))
              + f" {r['session_seconds']:>11.1f} {1000 * per_photo(n):>9.1f} {per_photo(n) / per_photo(base):>7.2f}"
              f" {mem['python_peak_rss_mb']:>10.0f} {mem['jvm_peak_rss_mb']:>11.0f} {mem['jvm_heap_peak_mb']:>12.0f}"
              f" {mem['jvm_heap_peak_mb'] / base_mem['jvm_heap_peak_mb']:>7.2f}")
    summary = {n: {"per_photo_ms": 1000 * per_photo(n), **runs[n]["driver_memory"],
                   **{f"{s}_seconds": runs[n]["stages"][s]["seconds"] for s in STAGES},
                   "session_seconds": runs[n]["session_seconds"], "wall_seconds": runs[n].get("wall_seconds")}
               for n in sizes}
    (work / "results.json").write_text(json.dumps(summary, indent=2))
    top = sizes[-1]
    rss_ratio = runs[top]["driver_memory"]["python_peak_rss_mb"] / runs[base]["driver_memory"]["python_peak_rss_mb"]
    jvm_ratio = runs[top]["driver_memory"]["jvm_peak_rss_mb"] / runs[base]["driver_memory"]["jvm_peak_rss_mb"]
    print(f"\ndriver python peak RSS {top} over {base}: {rss_ratio:.2f}; driver JVM peak RSS: {jvm_ratio:.2f}")
    print(f"results: {work / 'results.json'}")
    label = f"{top // 1000}k_over_{base // 1000}k" if base >= 1000 and top % 1000 == 0 else f"{top}_over_{base}"
    print(f"time_per_photo_{label}: {per_photo(top) / per_photo(base):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
