"""Ranking speed: 10,000 users x 500 places, top-10 per user, without reasons (the evaluation path).

The same signal table (random values, one row per user x place, written to Parquet beforehand and not timed) is
ranked with the same learned ranker (an xgboost booster of `rankerTrees` x `rankerDepth`, the recommender's
defaults) three ways:

- Spark: `wanderlens.travel.ranker.with_score` (the booster in a pandas UDF, Arrow batches) and `top_k` (a window
  per user), written to Parquet: the job `TravelRecommenderModel.rank` runs once the signals are computed;
- numpy, a plain loop over users: score each user's 500 rows, `argpartition` the top 10;
- numpy, vectorised: score all rows at once, `argpartition` along the place axis.

Usage: .venv/bin/python benchmarks/bench_rank_speed.py [--users 10000] [--places 500] [--out runs/bench_rank_speed]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def booster_bytes(trees: int, depth: int, seed: int = 0) -> bytes:
    """A ranker of the recommender's default size, trained on random data (its values do not matter here)."""
    import xgboost as xgb

    from wanderlens.travel.signals import SIGNALS

    rng = np.random.default_rng(seed)
    x = rng.random((20000, len(SIGNALS)))
    y = (x[:, 0] + x[:, 2] + 0.3 * rng.random(20000) > 1.3).astype(float)
    model = xgb.XGBRanker(n_estimators=trees, max_depth=depth, objective="rank:pairwise", random_state=seed)
    model.fit(x, y, qid=np.repeat(np.arange(500), 40))
    return bytes(model.get_booster().save_raw("json"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--places", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "bench_rank_speed")
    args = ap.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from wanderlens.config import TravelConfig
    from wanderlens.session import get_spark
    from wanderlens.travel.ranker import predict, top_k, with_score
    from wanderlens.travel.signals import SIGNALS

    cfg = TravelConfig()
    n, m, k = args.users, args.places, args.k
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    rng = np.random.default_rng(0)
    x = rng.random((n * m, len(SIGNALS))).astype(np.float64)
    users = np.repeat([f"u{i:05d}" for i in range(n)], m)
    places = np.tile([f"p{j:03d}" for j in range(m)], n)
    cols = {"user_id": users, "destination_id": places, "has_history": np.ones(n * m, bool)}
    cols.update({s: x[:, i] for i, s in enumerate(SIGNALS)})
    pq.write_table(pa.table(cols), args.out / "signals.parquet", row_group_size=500_000)
    raw = booster_bytes(cfg.ranker_trees, cfg.ranker_depth)
    print(f"machine: 2-core CPU VM shared with other jobs (load average at start "
          f"{os.getloadavg()[0]:.1f}); {n} users x {m} places = {n * m:,} rows, top-{k}, ranker "
          f"{cfg.ranker_trees} trees of depth {cfg.ranker_depth}")

    spark = get_spark(app_name="bench-rank-speed")
    feats = spark.read.parquet(str(args.out / "signals.parquet"))
    spark.range(1).count()  # JVM warm
    t = time.time()
    top_k(with_score(feats, "ranker", raw), k).select("user_id", "rank", "destination_id", "score") \
        .write.mode("overwrite").parquet(str(args.out / "ranked"))
    t_spark = time.time() - t
    t = time.time()
    top_k(with_score(feats, "popularity", b""), k).select("user_id", "rank", "destination_id", "score") \
        .write.mode("overwrite").parquet(str(args.out / "ranked_pop"))
    t_spark_pop = time.time() - t

    xs = x.reshape(n, m, len(SIGNALS))
    t = time.time()
    loop_top = np.empty((n, k), dtype=np.int64)
    for u in range(n):
        s = predict(raw, xs[u])
        part = np.argpartition(-s, k)[:k]
        loop_top[u] = part[np.argsort(-s[part], kind="stable")]
    t_loop = time.time() - t
    t = time.time()
    s_all = predict(raw, x).reshape(n, m)
    part = np.argpartition(-s_all, k, axis=1)[:, :k]
    vec_top = np.take_along_axis(part, np.argsort(-np.take_along_axis(s_all, part, 1), axis=1, kind="stable"), 1)
    t_vec = time.time() - t
    spark_top = {r["user_id"]: r["destination_id"] for r in spark.read.parquet(str(args.out / "ranked"))
                 .where("rank = 1").collect()}
    sampled = range(0, n, max(1, n // 500))
    agree = np.mean([spark_top[f"u{u:05d}"] == f"p{loop_top[u, 0]:03d}" == f"p{vec_top[u, 0]:03d}" for u in sampled])
    print(f"spark (ranker UDF + per-user window, written to Parquet): {t_spark:.1f} s")
    print(f"spark (one signal column + per-user window, no UDF):      {t_spark_pop:.1f} s")
    print(f"numpy, plain loop over users (booster per user):           {t_loop:.1f} s")
    print(f"numpy, vectorised (one predict, argpartition):             {t_vec:.1f} s")
    print(f"top-1 agreement spark = numpy loop = vectorised (sampled users): {agree:.3f}; load average at end "
          f"{os.getloadavg()[0]:.1f}")
    print(f"rank_speed_10k_x_500_spark_s: {t_spark:.1f}  numpy_loop_s: {t_loop:.1f}  numpy_vectorised_s: {t_vec:.1f}")


if __name__ == "__main__":
    main()
