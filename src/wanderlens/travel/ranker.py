"""The learned ranker: the signals combined by learning to rank on validation trips, and kept only when it beats
every one of its parts.

`choose_method` trains `xgboost.spark.SparkXGBRanker` (pairwise objective, distributed on Spark) on one half of the
validation users and compares it, on the other half, with every single signal ranking alone (popularity alone among
them). A validation query is one hidden trip of a user (its new places are the positives) with the signals computed
from the trips before it; several per user (the last training trip, the one before, ...) give the ranker enough
queries to learn from. The method with the best validation ndcg@k wins: the tuned model can never silently lose to
one of its parts on validation. The booster kept is then refitted on the queries of both halves. It reads the
SIGNALS and `LAST_PLACE` (`wanderlens.travel.signals.FEATURES`). Scores of a trained booster come from a pandas UDF
(the booster loaded once per Python worker), and `contributions` gives, for the few suggestions shown, how much each
signal added to the score (the reasons read from it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.travel.signals import FEATURES, LAST_PLACE, SIGNALS
from wanderlens.worker_heap import load_once

RANKER = "ranker"
_BOOSTERS: dict[str, Any] = {}


def load_booster(raw: bytes) -> Any:
    """The xgboost Booster of raw JSON bytes, loaded once per process."""
    import xgboost as xgb

    def build() -> Any:
        booster = xgb.Booster()
        booster.load_model(bytearray(raw))
        return booster

    return load_once(_BOOSTERS, hashlib.sha1(raw).hexdigest(), build)


def predict(raw: bytes, x: np.ndarray, contribs: bool = False) -> np.ndarray:
    """Ranker scores of a (rows x FEATURES) matrix; with `contribs`, per-feature contributions (last column: bias).
    A booster saved before `LAST_PLACE` existed reads the SIGNALS columns only."""
    import xgboost as xgb

    booster = load_booster(raw)
    names = FEATURES if booster.num_features() == len(FEATURES) else SIGNALS
    dm = xgb.DMatrix(np.asarray(x, dtype=np.float32)[:, : len(names)], feature_names=list(names))
    return booster.predict(dm, pred_contribs=contribs)


def with_score(features: DataFrame, method: str, raw: bytes | None) -> DataFrame:
    """Adds `score`: the ranker's (pandas UDF, Arrow batches) or one signal's; users without history are ranked by
    popularity whatever the method (the documented cold-start fallback)."""
    if method == RANKER and raw:
        @F.pandas_udf(T.DoubleType())
        def score(x: pd.Series) -> pd.Series:
            return pd.Series(predict(raw, np.stack(x.to_numpy())), dtype=float)

        s = score(F.array(*[F.coalesce(F.col(c).cast("double"), F.lit(float("nan"))) for c in FEATURES]))
    else:
        s = F.col(method if method in SIGNALS else "popularity").cast("double")
    return features.withColumn("score", F.when(F.col("has_history"), s).otherwise(F.col("popularity")))


def top_k(scored: DataFrame, k: int, score_col: str = "score") -> DataFrame:
    """The k best rows per user by `score_col` (ties by destination_id), with `rank` 1..k."""
    from pyspark.sql import Window

    w = Window.partitionBy("user_id").orderBy(F.desc(score_col), "destination_id")
    return scored.withColumn("rank", F.row_number().over(w)).where(F.col("rank") <= k)


def ranked_lists(features: DataFrame, methods: list[str], k: int, raw: bytes | None) -> DataFrame:
    """user_id, method, ranked (the top-k destination ids, best first) for every method, in one grouped pass
    (the fast evaluation path: no reasons)."""
    cols = ["user_id", "destination_id", "has_history", *FEATURES]

    def per_user(pdf: pd.DataFrame) -> pd.DataFrame:
        pdf = pdf.sort_values("destination_id").reset_index(drop=True)
        ids = pdf["destination_id"].to_numpy()
        x = pdf[list(FEATURES)].to_numpy(dtype=float)
        cold = not bool(pdf["has_history"].iloc[0])
        rows = []
        for m in methods:
            if cold:
                s = pdf["popularity"].to_numpy(dtype=float)
            elif m == "random":  # a seeded shuffle per user: the floor every signal must beat
                s = np.random.default_rng(int(hashlib.sha1(str(pdf["user_id"].iloc[0]).encode()).hexdigest()[:8],
                                              16)).random(len(pdf))
            elif m == RANKER:
                s = predict(raw, x) if raw else pdf["popularity"].to_numpy(dtype=float)
            else:
                s = pdf[m].to_numpy(dtype=float)
            order = np.argsort(-s, kind="stable")[:k]
            rows.append((m, [str(v) for v in ids[order]]))
        return pd.DataFrame({"user_id": pdf["user_id"].iloc[0], "method": [r[0] for r in rows],
                             "ranked": [r[1] for r in rows]})

    return features.select(*cols).groupBy("user_id").applyInPandas(
        per_user, "user_id string, method string, ranked array<string>")


def ndcg_at_k(ranked: list, relevant: set, k: int) -> float:
    """ndcg@k with binary gains (MLlib's `ndcgAtK` definition)."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / np.log2(i + 2) for i, x in enumerate(list(ranked)[:k]) if x in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(relevant))))
    return float(dcg / ideal)


def recall_at_k(ranked: list, relevant: set, k: int) -> float:
    """Share of the relevant items in the top k."""
    return len(set(list(ranked)[:k]) & relevant) / len(relevant) if relevant else 0.0


def per_user_metrics(lists: DataFrame, relevant: DataFrame, k: int) -> dict[str, dict[str, dict[str, float]]]:
    """{method: {user: {"ndcg": .., "recall": ..}}} from ranked lists and relevant sets (small: top-k per user)."""
    rel = {r["user_id"]: set(r["relevant"]) for r in relevant.collect()}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for r in lists.collect():
        if r["user_id"] in rel:
            out.setdefault(r["method"], {})[r["user_id"]] = {
                "ndcg": ndcg_at_k(r["ranked"], rel[r["user_id"]], k),
                "recall": recall_at_k(r["ranked"], rel[r["user_id"]], k)}
    return out


@dataclass
class RankerChoice:
    """What `choose_method` picked: the method, the booster (raw JSON bytes, empty when none was trained) and the
    validation ndcg@k of every candidate method on the held-out half of the validation users."""

    method: str
    booster: bytes = b""
    validation: dict[str, float] = field(default_factory=dict)


def train_booster(rows: DataFrame, seed: int, trees: int, depth: int) -> bytes:
    """SparkXGBRanker (pairwise objective) on rows with FEATURES, `label` and an integer `qid`; raw booster bytes."""
    from xgboost.spark import SparkXGBRanker

    est = SparkXGBRanker(features_col=list(FEATURES), label_col="label", qid_col="qid", num_workers=1,
                         n_estimators=trees, max_depth=depth, learning_rate=0.1, objective="rank:pairwise",
                         random_state=seed, missing=float("nan"))
    data = rows.select(*[F.col(c).cast("double") for c in FEATURES], F.col("label").cast("double"), "qid")
    model = est.fit(data.repartition(1).sortWithinPartitions("qid"))
    return bytes(model.get_booster().save_raw("json"))


def choose_method(features: DataFrame, relevant: DataFrame, k: int, seed: int, trees: int, depth: int,
                  method: str = "auto") -> RankerChoice:
    """Train the ranker on half the validation users and pick, on the other half, the best of the ranker and every
    single signal (method "auto"); a fixed `method` is trained (if it is the ranker) and kept.

    `features` and `relevant` may hold several queries per user: a `level` column (0: the last hidden trip, 1: the
    one before, ...; absent: one query per user). The halves split users, so all the queries of a user fall in the
    same half. The booster kept is refitted on the queries of both halves: the choice was made, and twice the
    queries make a better model of the same kind."""
    if "level" not in features.columns:
        features = features.withColumn("level", F.lit(0))
    if "level" not in relevant.columns:
        relevant = relevant.withColumn("level", F.lit(0))
    fold = F.abs(F.hash(F.concat(F.col("user_id"), F.lit(f"#{seed}")))) % 2
    query = F.concat_ws("@", F.col("user_id"), F.col("level").cast("string"))  # one query per hidden trip
    rel = relevant.where(F.size("relevant") > 0).withColumn("_fold", fold)
    labelled = (features.where(F.col("has_history")).join(rel, ["user_id", "level"])
                .withColumn("label", F.array_contains("relevant", F.col("destination_id")).cast("double"))
                .withColumn("user_id", query)
                .withColumn("qid", F.dense_rank().over(_by_user()).cast("long")))
    labelled = labelled.localCheckpoint()
    rel = rel.withColumn("user_id", query)
    if method != "auto":
        raw = _fit_if_positive(labelled, seed, trees, depth) if method == RANKER else b""
        return RankerChoice(method if (method != RANKER or raw) else "popularity", raw)
    raw = _fit_if_positive(labelled.where("_fold = 0"), seed, trees, depth)
    held = labelled.where("_fold = 1")
    methods = ([RANKER] if raw else []) + list(SIGNALS)
    scores = per_user_metrics(ranked_lists(held, methods, k, raw), rel, k)
    val = {m: float(np.mean([v["ndcg"] for v in scores[m].values()])) if scores.get(m) else 0.0 for m in methods}
    if raw:  # the choice is made: refit on the queries of both halves
        raw = _fit_if_positive(labelled, seed, trees, depth) or raw
    if not any(scores.values()):
        return RankerChoice("popularity", raw, val)
    # Ties go to the earlier method: the ranker first, then the signals in SIGNALS order (popularity first).
    best = max(methods, key=lambda m: (round(val[m], 9), -methods.index(m)))
    return RankerChoice(best, raw, val)


def _fit_if_positive(rows: DataFrame, seed: int, trees: int, depth: int) -> bytes:
    """The booster trained on `rows`, or empty bytes when they hold no positive (nothing to learn)."""
    if rows.where("label > 0").limit(1).count() == 0:
        return b""
    return train_booster(rows, seed, trees, depth)


def _by_user():
    from pyspark.sql import Window

    return Window.orderBy("user_id")


def contributions(raw: bytes, rows: pd.DataFrame) -> np.ndarray:
    """Per-row, per-signal contributions of the ranker's score (SHAP values; columns in SIGNALS order). What the
    last place's features add counts for the signal they refine: `sequence_last` for `sequence`, `km_last` for
    `geo_recent` (the reasons name a signal)."""
    c = predict(raw, rows[list(FEATURES)].to_numpy(dtype=float), contribs=True)
    out = np.array(c[:, : len(SIGNALS)], dtype=float)
    for name, into in zip(LAST_PLACE, ("sequence", "geo_recent"), strict=True):
        if c.shape[1] > len(FEATURES):  # a booster with the LAST_PLACE columns
            out[:, SIGNALS.index(into)] += c[:, FEATURES.index(name)]
    return out
