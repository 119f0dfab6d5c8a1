"""Benchmark: is the multi-task network the best model in its own report? `wanderlens evaluate` on the demo sample.

On the demo sample (2,000 photos, 60 users; generated, ingested and featurized once under
`--out`/sample-<sample seed> unless already there), `evaluate_job` with the DEFAULT config (configs/sample.yaml)
and 3 model seeds (0, 1, 2) compares, on one split and the same test rows:
multi-task · fused, single-task · fused, MLlib LogisticRegression · fused and XGBoost (SparkXGBClassifier) · fused.

Prints the comparison table (main metric per task, mean ± std over seeds), the Δm table, the multi-task model's
margin over each baseline per task, and the machine's load, and ends with the line
`mtl_vs_stl_delta_m: <fraction> mtl_minus_logreg_worst_task: <value>`:
Δm of multi-task over single-task (mean over seeds), and the worst task's (multi-task mean main metric minus
LogisticRegression's), signed so that positive means the multi-task model is better.

    python benchmarks/bench_quality.py [--sample-seed 1] [--seeds 0,1,2] [--set training.epochs=40]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def prepare(spark, out: Path, photos: int, users: int, sample_seed: int) -> Path:
    """The demo sample's features folder under `out`, built (sample, ingest, featurize) only when missing."""
    from wanderlens.data.ingest import ingest
    from wanderlens.data.sample import generate_sample
    from wanderlens.features.featurize import featurize

    features = out / "features"
    if (features / "features" / "_SUCCESS").is_file():
        return features
    t0 = time.perf_counter()
    generate_sample(out / "sample", photos=photos, users=users, seed=sample_seed)
    ingest(spark, out / "sample" / "manifest.csv", out / "ingested")
    featurize(spark, out / "ingested", features)
    print(f"built the sample (seed {sample_seed}, {photos} photos, {users} users) in {time.perf_counter() - t0:.0f} s")
    return features


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def margins(metrics, candidate: str, baseline: str) -> dict[str, float]:
    """Per task, the candidate's mean main metric minus the baseline's, signed so that + = candidate better."""
    main = metrics[metrics["main"]]
    out = {}
    for task, part in main.groupby("task", sort=False):
        c = part[part["variant"] == candidate]["value"]
        b = part[part["variant"] == baseline]["value"]
        if len(c) and len(b):
            sign = 1.0 if bool(part["larger_is_better"].iloc[0]) else -1.0
            out[str(task)] = sign * (float(c.mean()) - float(b.mean()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench_quality"))
    ap.add_argument("--sample-seed", type=int, default=0, help="seed of the generated sample (the demo's is 0)")
    ap.add_argument("--photos", type=int, default=2000)
    ap.add_argument("--users", type=int, default=60)
    ap.add_argument("--config", default=str(ROOT / "configs" / "sample.yaml"))
    ap.add_argument("--seeds", default="0,1,2", help="model seeds")
    ap.add_argument("--compare", default="single_task,logistic,xgboost", help="evaluation.compare")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override (repeatable)")
    ap.add_argument("--master", default=None, help="Spark master (default: local[*])")
    args = ap.parse_args()

    from rich.console import Console

    from wanderlens.cli.evaluation import rich_table
    from wanderlens.config import load_config
    from wanderlens.evaluation.comparison import LOGISTIC, MTL_FUSED, XGBOOST, comparison_rows, delta_rows
    from wanderlens.evaluation.job import evaluate_job
    from wanderlens.session import get_spark

    spark = get_spark(master=args.master, app_name="bench-quality")
    base = Path(args.out).resolve() / f"sample-{args.sample_seed}"
    print(f"start: {_load()}")
    features = prepare(spark, base, args.photos, args.users, args.sample_seed)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    compare = [c.strip() for c in args.compare.split(",") if c.strip()]
    cfg = load_config(args.config, [f"evaluation.seeds={seeds}", f"evaluation.compare={compare}",
                                    "evaluation.gallery=0", *args.overrides])
    t0 = time.perf_counter()
    result = evaluate_job(spark, features, cfg, base / "report", progress=lambda m: print(f"[evaluate] {m}",
                                                                                           flush=True))
    print(f"evaluate: {time.perf_counter() - t0:.0f} s; end: {_load()}")
    console = Console(width=160)
    console.print(rich_table(comparison_rows(result.comparison)))
    table = delta_rows(result.deltas)
    if table is not None:
        console.print(rich_table(table))
    for name in (LOGISTIC, XGBOOST):
        m = margins(result.metrics, MTL_FUSED, name)
        if m:
            print(f"multi-task minus {name} (+ = multi-task better): "
                  + ", ".join(f"{t} {v:+.4f} ({'at/above' if v >= -0.005 else 'BELOW'})" for t, v in m.items()))
    stl = result.deltas[result.deltas["candidate"].eq(MTL_FUSED) & result.deltas["comparison"].str.startswith(
        "multi-task vs single-task")]
    delta = float(stl["delta_m_mean"].iloc[0]) if len(stl) else float("nan")
    lr = margins(result.metrics, MTL_FUSED, LOGISTIC)
    worst = min(lr.values()) if lr else float("nan")
    print(f"mtl_vs_stl_delta_m: {delta:.4f} mtl_minus_logreg_worst_task: {worst:+.4f}")


if __name__ == "__main__":
    main()
