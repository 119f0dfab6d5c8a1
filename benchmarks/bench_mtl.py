"""Benchmark: one multi-task fit against K separate MLlib fits, the training loop against a plain torch loop,
and 2 DDP processes against 1, all in one run on the same features.

(a) `MultiTaskClassifier` (one fit, all tasks; with `linearHead`, the wide & deep path, unless `--no-linear-head`,
    and the linear warm start on standardised inputs with MLlib's regParam, unless `--no-warm-start`)
    vs one MLlib `LogisticRegression` per task: wall time ratio and
    per-task test metric (AUC for binary, accuracy for multiclass) side by side, with per task whether the network
    is at or above MLlib (within 0.005, the issue's tolerance) and how many tasks are.
(b) the in-process training loop (`run_training`, masking and weighting included) vs a plain single-process
    torch loop over the same tensors, same network, batch size and optimiser: samples/s ratio (goal >= 0.8).
(c) `numProcesses=2` (TorchDistributor, DDP over gloo) vs 1: training samples/s and whole-fit wall time.

Features: `--features DIR` (a featurize output folder with labels.json; binary and multiclass tasks are used),
else a synthetic table shaped like the photo features (dense vector, one multiclass and three binary tasks).
Last line: mtl_vs_separate_mllib_time_ratio: <ratio>
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
AT_MLLIB = 0.005  # "at" MLlib: within this of its metric (the tolerance of issue 13)
REG_PARAM = 1e-4  # MLlib LogisticRegression's regParam here, and the linear warm start's L2


def synthetic(spark, rows: int, dim: int, seed: int = 0):
    """A features-like table: `features` vector, `scene` (6 classes), `highlight`, `night`, `people` (0/1)."""
    import pandas as pd
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    w = rng.normal(size=(dim, 16)) / np.sqrt(dim)
    h = np.tanh(x @ w)  # shared latent factors: the tasks are related through them
    logits = h @ rng.normal(size=(16, 9))
    noise = rng.gumbel(size=(rows, 6))
    pdf = pd.DataFrame({
        "features": list(x),
        "scene": np.array(["beach", "city", "mountain", "forest", "desert", "lake"])[
            np.argmax(logits[:, :6] * 2 + noise, axis=1)],
        "highlight": (logits[:, 6] + 0.5 * rng.normal(size=rows) > 0).astype(float),
        "night": (logits[:, 7] + 0.5 * rng.normal(size=rows) > 0.3).astype(float),
        "people": (logits[:, 8] + 0.5 * rng.normal(size=rows) > -0.3).astype(float),
    })
    df = spark.createDataFrame(pdf, "features array<float>, scene string, highlight double, night double, "
                                    "people double")
    return df.withColumn("features", array_to_vector(F.col("features")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--features", default=None, help="featurize output folder (default: synthetic table)")
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--parts", default="abc", help="which comparisons to run (a, b, c)")
    ap.add_argument("--no-linear-head", action="store_true", help="(a): without the linear path (model.linear_head)")
    ap.add_argument("--validation-fraction", type=float, default=0.2,
                    help="(a): training rows held out for per-task selection (0: none, the last epoch's weights)")
    ap.add_argument("--no-warm-start", action="store_true", help="(a): without the linear warm start "
                    "(training.linear_warm_start, model.standardization)")
    args = ap.parse_args()

    import torch
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import BinaryClassificationEvaluator, MulticlassClassificationEvaluator
    from pyspark.sql import functions as F

    from wanderlens.config import TrainingConfig
    from wanderlens.mtl import MultiTaskClassifier, index_labels
    from wanderlens.mtl.architectures import build_network
    from wanderlens.mtl.data import encode, infer_classes, read_shard, write_shards
    from wanderlens.mtl.tasks import TaskSpec
    from wanderlens.mtl.train import config_tasks, features_table
    from wanderlens.mtl.trainer import TrainingRun, run_training
    from wanderlens.session import get_spark

    spark = get_spark(master="local[2]", app_name="bench-mtl")
    if args.features:
        df = spark.read.parquet(str(features_table(args.features)))
        tasks = [t for t in config_tasks(args.features, None) if t.type in ("binary", "multiclass")]
    else:
        df = synthetic(spark, args.rows, args.dim)
        tasks = [TaskSpec("scene", "multiclass"), TaskSpec("highlight", "binary"), TaskSpec("night", "binary"),
                 TaskSpec("people", "binary")]
    tasks = infer_classes(df, tasks)
    train, test = df.randomSplit([0.8, 0.2], seed=1)
    train, test = train.cache(), test.cache()
    n_train = train.count()
    test.count()
    params = {"architecture": "mmoe", "expertHidden": [64], "towerHidden": [32], "numExperts": 4,
              "batchSize": 256, "learningRate": 2e-3, "maxEpochs": args.epochs, "seed": 0}
    warm = not (args.no_linear_head or args.no_warm_start)
    head = {"linearHead": not args.no_linear_head, "standardization": warm, "linearWarmStart": warm,
            "linearL2": REG_PARAM, "validationFraction": args.validation_fraction}
    print(f"{n_train} training rows, tasks {[(t.name, t.type) for t in tasks]}, "
          f"{args.epochs} epochs, MMoE {params['numExperts']}x{params['expertHidden']}, "
          f"linear head {head['linearHead']}, linear warm start {warm}")

    # (a) one multi-task fit vs K separate MLlib fits
    mtl_time, sep_time = float("nan"), float("nan")
    if "a" in args.parts:
        t = time.perf_counter()
        mtl = MultiTaskClassifier(tasks=tasks, **params, **head).fit(train)
        mtl_time = time.perf_counter() - t
        pred = index_labels(mtl.transform(test), tasks).cache()
        lab = index_labels(train, tasks).cache()
        lab.count()
        sep_time, rows = 0.0, []
        for task in tasks:
            label = f"{task.name}_label"
            t = time.perf_counter()
            lr = LogisticRegression(featuresCol="features", labelCol=label, maxIter=100, regParam=REG_PARAM,
                                    predictionCol="p", probabilityCol="pr", rawPredictionCol="r")
            fitted = lr.fit(lab.where(F.col(label).isNotNull()))
            sep_time += time.perf_counter() - t
            single = fitted.transform(index_labels(test, [task]).where(F.col(label).isNotNull()))
            if task.type == "binary":
                m_sep = BinaryClassificationEvaluator(labelCol=label, rawPredictionCol="r").evaluate(single)
                m_mtl = BinaryClassificationEvaluator(labelCol=label, rawPredictionCol=f"{task.name}_rawPrediction") \
                    .evaluate(pred.where(F.col(label).isNotNull()))
                metric = "AUC"
            else:
                m_sep = MulticlassClassificationEvaluator(labelCol=label, predictionCol="p",
                                                          metricName="accuracy").evaluate(single)
                m_mtl = MulticlassClassificationEvaluator(labelCol=label, predictionCol=f"{task.name}_prediction",
                                                          metricName="accuracy").evaluate(
                    pred.where(F.col(label).isNotNull()))
                metric = "accuracy"
            rows.append((task.name, metric, m_mtl, m_sep))
        print("\n(a) one MultiTaskClassifier fit vs one MLlib LogisticRegression per task")
        print(f"  wall time: multi-task {mtl_time:.1f} s, {len(tasks)} separate fits {sep_time:.1f} s, "
              f"ratio {mtl_time / sep_time:.3f}")
        print(f"  {'task':10s} {'metric':9s} {'multi-task':>10s} {'MLlib':>9s} {'diff':>7s}  network vs MLlib")
        for name, metric, a, b in rows:
            verdict = "above" if a > b + AT_MLLIB else "at" if a >= b - AT_MLLIB else "BELOW"
            print(f"  {name:10s} {metric:9s} {a:>10.4f} {b:>9.4f} {a - b:>+7.4f}  {verdict}")
        print(f"  per-task best epoch (0: the warm-started linear model alone): {mtl.trainingInfo.get('best_epoch')}")
        worst = min(a - b for _, _, a, b in rows)
        print(f"  tasks where the network is at or above MLlib (within {AT_MLLIB}): "
              f"{sum(a >= b - AT_MLLIB for _, _, a, b in rows)}/{len(rows)}")
        print(f"  goal: faster ({'met' if mtl_time < sep_time else 'MISSED'}) and no task worse by more than 0.01 "
              f"({'met' if worst >= -0.01 else 'MISSED'}: worst difference {worst:+.4f})")

    # (b) the training loop vs a plain torch loop over the same tensors
    work = tempfile.mkdtemp(prefix="bench-mtl-")
    write_shards(encode(train, ["features"], tasks), f"{work}/train", 1, 0)
    dim = int(len(train.first()["features"]))
    run = TrainingRun(tasks=[t.to_dict() for t in tasks], arch={"name": "mmoe", "expert_hidden": [64],
                      "tower_hidden": [32], "num_experts": 4}, input_dim=dim, train_path=f"{work}/train",
                      training=TrainingConfig(learning_rate=2e-3, epochs=args.epochs, batch_size=256, seed=0))
    shard = read_shard(f"{work}/train", 0, 1, tasks, dim)
    x = torch.from_numpy(shard.x)
    ys = [torch.from_numpy(y) for y in shard.targets]
    bce, ce = torch.nn.BCEWithLogitsLoss(), torch.nn.CrossEntropyLoss()

    def plain_loop() -> float:
        previous = torch.get_num_threads()
        torch.set_num_threads(1)
        torch.manual_seed(0)
        net = build_network(run.arch, dim, [t.num_outputs for t in tasks])
        opt = torch.optim.Adam(net.parameters(), lr=2e-3)
        t = time.perf_counter()
        seen = 0
        for epoch in range(args.epochs):
            perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
            for s in range(0, len(x), 256):
                idx = perm[s: s + 256]
                outs = net(x[idx])
                loss = sum(ce(o, y[idx]) if tk.type == "multiclass" else bce(o[:, 0], y[idx])
                           for tk, o, y in zip(tasks, outs, ys, strict=True))
                opt.zero_grad()
                loss.backward()
                opt.step()
                seen += len(idx)
        torch.set_num_threads(previous)
        return seen / (time.perf_counter() - t)

    def ours_loop() -> float:
        res = run_training(run)
        return sum(h["samples"] for h in res["history"]) / sum(h["seconds"] for h in res["history"])

    # Interleaved repeats, medians: the host is shared, so load drifts between back-to-back measurements.
    pairs = [(ours_loop(), plain_loop()) for _ in range(3)] if "b" in args.parts else [(1.0, 1.0)]
    ours = float(np.median([p[0] for p in pairs]))
    plain = float(np.median([p[1] for p in pairs]))
    print("\n(b) in-process training loop vs a plain torch loop (same tensors, network, batch, Adam, 1 thread)")
    print(f"  samples/s: wanderlens {ours:,.0f}, plain torch {plain:,.0f}, ratio {ours / plain:.3f} "
          f"(goal >= 0.8: {'met' if ours / plain >= 0.8 else 'MISSED'})")

    # (c) 2 DDP processes vs 1
    if "c" in args.parts:
        t = time.perf_counter()
        one = MultiTaskClassifier(tasks=tasks, numProcesses=1, **params).fit(train)
        t1 = time.perf_counter() - t
        t = time.perf_counter()
        two = MultiTaskClassifier(tasks=tasks, numProcesses=2, **params).fit(train)
        t2 = time.perf_counter() - t

        def rate(m):
            return sum(h["samples"] for h in m.history) / sum(h["seconds"] for h in m.history)

        print("\n(c) TorchDistributor: 2 DDP processes (gloo, 1 thread each) vs 1 process in-process")
        print(f"  training samples/s: 1 process {rate(one):,.0f}, 2 processes {rate(two):,.0f}, "
              f"ratio {rate(two) / rate(one):.3f}")
        print(f"  whole fit wall time: 1 process {t1:.1f} s, 2 processes {t2:.1f} s (includes the distributor's "
              f"start), ratio {t2 / t1:.3f}; rank parameter max diff {two.trainingInfo['rank_param_max_abs_diff']}")
    print(f"mtl_vs_separate_mllib_time_ratio: {mtl_time / sep_time:.3f}")


if __name__ == "__main__":
    main()
