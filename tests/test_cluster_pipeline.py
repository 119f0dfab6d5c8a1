"""The job on a real 2-worker standalone cluster: same metrics as local mode, a worker killed mid-featurization,
a training run killed mid-epoch and resumed from its checkpoint.

One cluster for the module (1 core, 1g per worker), always stopped. The cluster run is a separate driver process
(`python -m wanderlens.cluster.pipeline`, the library's own stage functions against `spark://...`): phase A runs
ingest, featurize and train while the test SIGKILLs worker 2 (and its executor) in the middle of the image
embedding, restarts it, then SIGKILLs the driver and its training processes once training has checkpointed two
epochs; phase B reruns training with the same checkpoint folder (it resumes) and evaluates.

The local reference trains uninterrupted on the test session's local[2] SparkSession and evaluates there. It trains
from the same training shards the cluster run wrote: the row order inside a shard follows Spark's shuffle fetch
order, which differs between a cluster and local mode, and SGD on differently ordered rows lands elsewhere within
the noise. On the same shards both runs compute the same numbers, so the tolerances below are tight.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from pyspark.sql import functions as F

from wanderlens.cluster.pipeline import DEFAULT_CONFIG, run_pipeline
from wanderlens.cluster.standalone import StandaloneCluster, _wait_gone

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

# Cluster and local runs may differ by at most this much (absolute) in any metric: same seed, same shards, same
# thread counts, so only float summation order could differ. Features: ONNX/torch run with other thread layouts.
METRIC_TOLERANCE = 1e-3
FEATURE_TOLERANCE = 1e-4
EPOCHS = 10
CONFIG: dict[str, Any] = {
    "model": dict(DEFAULT_CONFIG["model"]),
    "training": {**DEFAULT_CONFIG["training"], "epochs": EPOCHS, "batch_size": 16},
}
PHASE_TIMEOUT = 600


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Master and two Workers (1 core, 1g each) on free ports; stopped even when a test fails."""
    c = StandaloneCluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start(workers=2, cores=1, memory="1g", port=None, webui_port=None)
        yield c
    finally:
        c.stop()


def _driver(args: list[str], log: Path) -> subprocess.Popen:
    """The pipeline as its own driver process, in its own session (so killing it takes its JVM along)."""
    # Eight image-embedding tasks instead of one per core: the two workers then stay busy side by side for the
    # whole stage, so the kill below reliably finds a task running on each (with two tasks, one could finish
    # before the other started on an idle machine, and the test saw no moment with both running).
    env = dict(os.environ, SPARK_LOCAL_IP="127.0.0.1", PYTHONUNBUFFERED="1",
               PYSPARK_SUBMIT_ARGS="--conf spark.default.parallelism=8 pyspark-shell")
    env.pop("WANDERLENS_SPARK_MASTER", None)
    with open(log, "ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "wanderlens.cluster.pipeline", *args], stdout=fh,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _until(cond, proc: subprocess.Popen, log: Path, what: str, timeout: float = PHASE_TIMEOUT, poll: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if proc.poll() is not None:
            pytest.fail(f"driver exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(poll)
    pytest.fail(f"timed out waiting for {what}")


def _running_attempts(cache_root: Path) -> list[Path]:
    """Task attempts of the image-embedding write in progress (Hadoop committer folders under the temp table)."""
    return list(cache_root.glob(".images_*.tmp-*/_temporary/*/_temporary/attempt_*"))


def _task_running_on_worker(cluster: StandaloneCluster, index: int) -> bool:
    """Whether an executor of worker `index` has started a task it has not finished (its executor log says so)."""
    started: set[str] = set()
    finished: set[str] = set()
    for log in cluster.dir.glob(f"work/worker-{index}/app-*/*/stderr"):
        text = log.read_text(errors="replace")
        started |= set(re.findall(r"Running task ([\d.]+ in stage [\d.]+)", text))
        finished |= set(re.findall(r"Finished task ([\d.]+ in stage [\d.]+)", text))
    return bool(started - finished)


def _checkpoint_epoch(ckpt: Path) -> int | None:
    try:
        return int(torch.load(ckpt / "last.pt", weights_only=False)["epoch"])
    except Exception:  # noqa: BLE001 - not written yet, or being replaced
        return None


_versions: set[tuple[int, int]] = set()


def _count_checkpoints(ckpt: Path, wanted: int) -> int | None:
    """Count the distinct last.pt files seen so far (one per finished epoch); the count once it reaches `wanted`."""
    try:
        st = os.stat(ckpt / "last.pt")
        _versions.add((st.st_ino, st.st_mtime_ns))
    except FileNotFoundError:
        pass
    time.sleep(0.005)
    return len(_versions) if len(_versions) >= wanted else None


def _training_processes(cluster: StandaloneCluster, ranks: int = 0) -> list[int]:
    """TorchDistributor's torchrun launchers on the workers and the training ranks they started (which run in
    sessions of their own); empty until `ranks` launchers each have a child."""
    parent, launchers = {}, []
    for pid in cluster.worker_processes(1) + cluster.worker_processes(2):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            parent[pid] = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if b"torch.distributed.run" in cmd or b"torchrun" in cmd:
            launchers.append(pid)
    if ranks and (len(launchers) < ranks or any(pid not in parent.values() for pid in launchers)):
        return []
    found = set(launchers)
    while True:
        more = {pid for pid, ppid in parent.items() if ppid in found} - found
        if not more:
            return sorted(found)
        found |= more


def _retried_attempts(cluster: StandaloneCluster) -> list[str]:
    """'Running task N.A' lines with attempt A > 0 in every executor log of the cluster."""
    lines = []
    for log in cluster.dir.glob("work/worker-*/app-*/*/stderr"):
        lines += re.findall(r"Running task \d+\.[1-9]\d* in stage [\d.]+", log.read_text(errors="replace"))
    return lines


@pytest.fixture(scope="module")
def cluster_run(cluster: StandaloneCluster, sample_dir: Path, tmp_path_factory) -> dict[str, Any]:
    """Phases A and B on the cluster; returns run.json plus what the test saw when it killed things."""
    out = tmp_path_factory.mktemp("cluster-run")
    ckpt = out / "checkpoints"
    config = out / "config.json"
    config.write_text(json.dumps(CONFIG))
    log = out / "driver.log"
    common = ["--manifest", str(sample_dir / "manifest.csv"), "--out", str(out), "--master", cluster.master_url,
              "--config", str(config), "--checkpoint-dir", str(ckpt)]
    seen: dict[str, Any] = {}
    training: list[int] = []

    # Phase A: ingest, featurize (worker 2 dies mid-way), train (driver dies mid-way).
    proc = _driver([*common, "--stages", "ingest,featurize,train"], log)
    try:
        cache_root = out / "features" / "cache"
        # Kill while the image embedding writes (an attempt folder exists) and worker 2 runs a task of it (its
        # executor log has a task started and not finished). Counting two attempt folders at once was flaky: a
        # task creates its folder only when it writes its first batch, so on a fast machine the two rarely overlap.
        _until(lambda: _running_attempts(cache_root) and _task_running_on_worker(cluster, 2), proc, log,
               "an image-embedding task on worker 2", poll=0.02)
        seen["attempts_at_kill"] = len(_running_attempts(cache_root))
        seen["cache_done_at_kill"] = any(p.name.startswith("images_") for p in cache_root.iterdir())
        cluster.kill_worker(2)
        seen["worker_killed_at"] = time.time()
        cluster.start_worker(2)  # a replacement machine joins; the lost task is retried meanwhile

        # Training ranks are found before the kill moment, which then only needs a cheap stat() poll: epochs take
        # a fraction of a second, and every checkpoint replaces last.pt (a new inode per epoch).
        training = _until(lambda: _training_processes(cluster, ranks=2), proc, log, "the training ranks to start",
                          poll=0.2)
        checkpoints = _until(lambda: _count_checkpoints(ckpt, 2), proc, log, "two training epochs", poll=0.0)
        # The whole job dies at once: the driver (with its JVM) and the training ranks on the workers.
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in training:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        seen["checkpoints_seen"] = checkpoints
        seen["training_processes_killed"] = len(training)
        seen["model_saved_at_kill"] = (out / "model").exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seen["training_processes_left"] = len(_wait_gone(training, 30))
    seen["checkpoint_epoch_after_kill"] = _checkpoint_epoch(ckpt)
    seen["retried_attempts"] = _retried_attempts(cluster)

    # Phase B: a new driver trains again with the same checkpoint folder (it resumes), then evaluates.
    proc = _driver([*common, "--stages", "train,evaluate"], log)
    try:
        rc = proc.wait(timeout=PHASE_TIMEOUT)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert rc == 0, log.read_text()[-3000:]
    run = json.loads((out / "run.json").read_text())
    return {"out": out, "run": run, "seen": seen}


@pytest.fixture(scope="module")
def local_run(spark, cluster_run, tmp_path_factory) -> dict[str, Any]:
    """Training (uninterrupted) and evaluation in local mode, from the cluster run's features and training shards."""
    out = tmp_path_factory.mktemp("local-run")
    shutil.copytree(cluster_run["out"] / "features", out / "features", ignore=shutil.ignore_patterns("cache"))
    shutil.copytree(cluster_run["out"] / "checkpoints" / "data", out / "checkpoints" / "data")
    return run_pipeline("unused", out, stages=("train", "evaluate"), config=CONFIG,
                        checkpoint_dir=out / "checkpoints")


def _main_metrics(run: dict[str, Any]) -> dict[str, float]:
    main = {"accuracy", "microF1Measure", "areaUnderROC", "rmse"}
    return {f"{m['task']}.{m['metric']}": m["value"] for m in run["stages"]["evaluate"]["metrics"]
            if m["metric"] in main}


def test_cluster_runs_every_stage_with_the_project_python(cluster_run) -> None:
    run = cluster_run["run"]
    assert run["master"].startswith("spark://127.0.0.1:")
    assert run["executor_pythons"] == [sys.executable]
    assert set(run["stages"]) == {"ingest", "featurize", "train", "evaluate"}
    assert run["stages"]["train"]["training"]["world_size"] == 2  # TorchDistributor across both workers


def test_worker_killed_mid_featurize_every_photo_featurized_once(spark, cluster_run) -> None:
    seen, out, run = cluster_run["seen"], cluster_run["out"], cluster_run["run"]
    assert seen["attempts_at_kill"] >= 1 and not seen["cache_done_at_kill"], "the kill must land mid-embedding"
    assert seen["retried_attempts"], "the killed worker's task was not retried on another executor"

    photos = spark.read.parquet(str(out / "ingested" / "photos"))
    features = spark.read.parquet(str(out / "features" / "features"))
    ids_in = {r.photo_id for r in photos.select("photo_id").collect()}
    ids_out = [r.photo_id for r in features.select("photo_id").collect()]
    assert len(ids_out) == len(ids_in) == run["stages"]["ingest"]["rows_kept"]
    assert set(ids_out) == ids_in  # none missing, none extra, no duplicates (lengths equal)
    assert features.where(F.col("image_embedding").isNull()).count() == run["stages"]["featurize"]["image_errors"]

    # The table the killed task was writing: one row per distinct image, written once.
    cache = next((out / "features" / "cache").glob("images_*"))
    embedded = spark.read.parquet(str(cache))
    distinct_images = photos.select("sha256").distinct().count()
    assert embedded.count() == embedded.select("sha256").distinct().count() == distinct_images
    assert not list((out / "features" / "cache").glob(".images_*")), "a temporary table was left behind"


def test_training_killed_mid_epoch_resumes_to_same_quality(cluster_run, local_run) -> None:
    seen, run = cluster_run["seen"], cluster_run["run"]
    killed_after = seen["checkpoint_epoch_after_kill"]
    assert not seen["model_saved_at_kill"]
    assert seen["training_processes_killed"] >= 4 and seen["training_processes_left"] == 0
    assert killed_after is not None and 1 <= killed_after < EPOCHS - 1, "the kill must land before the last epoch"

    resumed = run["stages"]["train"]
    assert resumed["training"]["resumed_from_epoch"] == killed_after + 1
    assert [h["epoch"] for h in resumed["history"]] == list(range(1, EPOCHS + 1))

    uninterrupted = local_run["stages"]["train"]["history"]
    assert len(uninterrupted) == EPOCHS
    for got, ref in zip(resumed["history"], uninterrupted, strict=True):
        assert got["val_metric"] == pytest.approx(ref["val_metric"], abs=METRIC_TOLERANCE), got["epoch"]
        assert got["val_loss"] == pytest.approx(ref["val_loss"], abs=METRIC_TOLERANCE), got["epoch"]


def test_cluster_matches_local_mode(spark, cluster_run, local_run, ingested_dir, featurized_dir) -> None:
    from pyspark.ml.functions import vector_to_array

    from wanderlens.io import read_json

    local_ingest = read_json(ingested_dir / "summary.json")
    cluster_ingest = cluster_run["run"]["stages"]["ingest"]
    assert (cluster_ingest["rows_kept"], cluster_ingest["rows_quarantined"]) == (
        local_ingest["rows_kept"], local_ingest["rows_quarantined"])

    # Features computed on the cluster equal those computed in local mode (the session's featurized sample).
    def vectors(path: Path, name: str):
        return spark.read.parquet(str(path / "features")).select("photo_id", vector_to_array("features").alias(name))

    both = vectors(cluster_run["out"] / "features", "c").join(vectors(featurized_dir, "l"), "photo_id", "full")
    diff = both.select(F.array_max(F.zip_with("c", "l", lambda x, y: F.abs(x - y))).alias("d"),
                       (F.size("c") == F.size("l")).alias("same_size")).agg(
        F.count(F.lit(1)).alias("rows"), F.count("d").alias("paired"), F.max("d").alias("max_diff"),
        F.sum(F.col("same_size").cast("int")).alias("same_size")).first()
    assert diff["rows"] == diff["paired"] == diff["same_size"] == cluster_ingest["rows_kept"]
    assert diff["max_diff"] <= FEATURE_TOLERANCE

    on_cluster, local = _main_metrics(cluster_run["run"]), _main_metrics(local_run)
    assert set(on_cluster) == set(local) and len(local) >= 3
    for name, value in local.items():
        assert on_cluster[name] == pytest.approx(value, abs=METRIC_TOLERANCE), name
