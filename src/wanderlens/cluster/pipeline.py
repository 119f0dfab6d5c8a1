"""The job as one measured driver: ingest -> featurize -> train -> evaluate against any Spark master.

It calls the same library functions as the stage commands (no cluster-specific code) and records, per stage, the
seconds and counts, plus the test metrics and the driver's peak memory (Python and JVM), in OUT/run.json. The
cluster tests run it as a separate driver process against a standalone cluster; `benchmarks/bench_scale.py` runs
it at growing sizes. `python -m wanderlens.cluster.pipeline --help` for the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from wanderlens.errors import ConfigError
from wanderlens.io import read_json, write_json
from wanderlens.session import get_spark

STAGES = ("ingest", "featurize", "train", "evaluate")
SPLIT = {"by": "photo", "seed": 0, "fractions": [0.7, 0.15, 0.15]}
# A small, fixed training setup: identical wherever it runs, so local and cluster runs are comparable.
DEFAULT_CONFIG: dict[str, Any] = {
    "model": {"architecture": "mmoe", "expert_hidden": [64], "tower_hidden": [32], "num_experts": 3},
    "training": {"epochs": 8, "batch_size": 32, "learning_rate": 0.002, "seed": 0, "num_processes": 2},
}


def driver_memory(spark: SparkSession) -> dict[str, float]:
    """Peak memory of this driver: Python resident set, JVM resident set and JVM heap (MB)."""
    out = {"python_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    jvm = spark.sparkContext._jvm
    pid = int(jvm.java.lang.ProcessHandle.current().pid())
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["jvm_peak_rss_mb"] = int(line.split()[1]) / 1024
    except OSError:
        pass
    heap_peak = 0
    for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        if str(pool.getType().toString()) == "Heap memory":
            heap_peak += int(pool.getPeakUsage().getUsed())
    out["jvm_heap_peak_mb"] = heap_peak / 2**20
    return out


def executor_pythons(spark: SparkSession) -> list[str]:
    """The interpreters the executors' Python workers run (one small task per default-parallelism slot)."""
    n = spark.sparkContext.defaultParallelism
    rdd = spark.sparkContext.parallelize(range(n), n).map(lambda _: sys.executable)
    return sorted(set(rdd.collect()))


def _split(df: Any) -> Any:
    from wanderlens.evaluation.splits import DataSplitter

    return DataSplitter(**SPLIT).transform(df)


def run_pipeline(
    manifest: str | Path,
    out: str | Path,
    master: str | None = None,
    stages: Sequence[str] = STAGES,
    config: dict[str, Any] | None = None,
    checkpoint_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run `stages` in order under `out` (ingested/, features/, model/), returning and saving OUT/run.json.

    Training uses the train+validation rows of a seeded photo split (validation rows for early stopping and the
    checkpointed history); evaluation scores the test rows with `MultiTaskEvaluator`.
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"unknown stage(s) {unknown}; use any of {list(STAGES)}")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = json.loads(json.dumps(config or DEFAULT_CONFIG))
    if checkpoint_dir:
        cfg.setdefault("training", {})["checkpoint_dir"] = str(checkpoint_dir)
    run_path = out / "run.json"
    run: dict[str, Any] = read_json(run_path) if run_path.is_file() else {}
    run.update({"master": None, "stages": run.get("stages", {}), "config": cfg})
    t_start = time.perf_counter()
    spark = get_spark(master=master, app_name="wanderlens-pipeline")
    run["master"] = spark.sparkContext.master
    run["session_seconds"] = time.perf_counter() - t_start
    run["executor_pythons"] = executor_pythons(spark)
    write_json(run, run_path)
    model = None
    for stage in stages:
        print(f"stage {stage}: start", flush=True)
        t0 = time.perf_counter()
        info: dict[str, Any] = {}
        if stage == "ingest":
            from wanderlens.data.ingest import ingest

            summary = ingest(spark, manifest, out / "ingested")
            info = {k: summary[k] for k in ("rows_in", "rows_kept", "rows_quarantined")}
        elif stage == "featurize":
            from wanderlens.features.featurize import featurize

            summary = featurize(spark, out / "ingested", out / "features")
            info = {k: summary[k] for k in ("rows", "images_computed", "image_errors")}
        elif stage == "train":
            from wanderlens.mtl.train import features_table, train_from_config

            df = _split(spark.read.parquet(str(features_table(out / "features"))))
            df = df.where(F.col("split") != "test").withColumn("is_validation", F.col("split") == "validation")
            cfg["training"]["validation_indicator_col"] = "is_validation"
            model = train_from_config(spark, out / "features", cfg, out / "model", df=df)
            info = {"training": model.trainingInfo, "history": model.history}
        elif stage == "evaluate":
            info = {"metrics": evaluate_model(spark, out, model)}
        info["seconds"] = time.perf_counter() - t0
        run["stages"][stage] = info
        write_json(run, run_path)
        print(f"stage {stage}: done in {info['seconds']:.1f}s", flush=True)
    run["driver_memory"] = driver_memory(spark)
    run["total_seconds"] = time.perf_counter() - t_start
    write_json(run, run_path)
    return run


def evaluate_model(spark: SparkSession, out: Path, model: Any = None) -> list[dict[str, Any]]:
    """Metrics of the saved model on the test rows of the seeded split: [{task, metric, value, n}]."""
    from wanderlens.evaluation.evaluator import MultiTaskEvaluator
    from wanderlens.mtl.estimator import MultiTaskModel
    from wanderlens.mtl.tasks import index_labels
    from wanderlens.mtl.train import features_table

    model = model or MultiTaskModel.load(str(out / "model"))
    test = _split(spark.read.parquet(str(features_table(out / "features")))).where(F.col("split") == "test")
    preds = index_labels(model.transform(test), model.tasks)
    table = MultiTaskEvaluator(tasks=model.tasks).evaluate_all(preds)
    return [{"task": r.task, "metric": r.metric, "value": float(r.value), "n": int(r.n)} for r in table.itertuples()]


def main(argv: list[str] | None = None) -> int:
    """Command line: run the stages as one driver and print where run.json is."""
    parser = argparse.ArgumentParser(prog="python -m wanderlens.cluster.pipeline", description=__doc__)
    parser.add_argument("--manifest", required=True, help="manifest.csv of the collection (e.g. a sample)")
    parser.add_argument("--out", required=True, help="output folder (ingested/, features/, model/, run.json)")
    parser.add_argument("--master", default=None, help="Spark master URL (default: WANDERLENS_SPARK_MASTER)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    parser.add_argument("--config", default=None, help="JSON file with model/training sections")
    parser.add_argument("--checkpoint-dir", default=None, help="training checkpoint folder (resumes from it)")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text()) if args.config else None
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    run_pipeline(args.manifest, args.out, master=args.master, stages=[s for s in args.stages.split(",") if s],
                 config=config, checkpoint_dir=args.checkpoint_dir)
    print(f"run: {Path(args.out).resolve() / 'run.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
