"""Evaluating suggestions on held-out trips: each user's last trip is hidden, and the destinations of that trip
they had not visited before are what a recommender should find.

One run compares the popularity baseline, ALS alone, content alone and the blend with MLlib `RankingEvaluator`
(precision@k, ndcg@k, MAP). The blend's content and popularity weights, its variety penalty and the ALS settings
are tuned on a validation split (the last trip of the training part), and the cold-start users' content share
apart; warm users and simulated cold-start users (few photos, unseen by ALS) are scored apart. Per-user ndcg@k
(the same definition as MLlib's, checked against it) gives a paired bootstrap interval for the blend's gain over
each baseline, so a gain can be told from noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyspark.ml.evaluation import RankingEvaluator
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from wanderlens.travel.recommend import (
    TravelRecommender,
    TravelRecommenderModel,
    blend_scores,
    greedy_pick,
    load_catalog,
    new_user_share,
    user_diversity,
)
from wanderlens.travel.trips import require_columns

METRICS = {"precision@k": "precisionAtK", "ndcg@k": "ndcgAtK", "MAP": "meanAveragePrecision"}


def last_trip_split(photos: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(training photos, held-out) where held-out has user_id and `relevant` (destinations of the user's last trip
    not visited on earlier trips); users with a single trip keep all their photos and are not evaluated."""
    require_columns(photos, ["user_id", "trip_id", "taken_at", "destination_id"], "last_trip_split")
    starts = photos.where(F.col("trip_id").isNotNull()).groupBy("user_id", "trip_id").agg(
        F.min("taken_at").alias("_start"))
    w = Window.partitionBy("user_id").orderBy(F.desc("_start"), F.desc("trip_id"))
    ranked = starts.withColumn("_n", F.row_number().over(w)).withColumn("_trips", F.count("*").over(
        Window.partitionBy("user_id")))
    last = ranked.where((F.col("_n") == 1) & (F.col("_trips") >= 2)).select("user_id", F.col("trip_id").alias("_last"))
    tagged = photos.join(last, "user_id", "left")
    held = F.col("_last").isNotNull() & (F.col("trip_id") == F.col("_last"))
    train = tagged.where(~held | F.col("trip_id").isNull()).drop("_last")
    test = tagged.where(held).drop("_last")
    seen = train.select("user_id", "destination_id").distinct()
    relevant = (test.select("user_id", "destination_id").where(F.col("destination_id").isNotNull()).distinct()
                .join(seen, ["user_id", "destination_id"], "left_anti")
                .groupBy("user_id").agg(F.array_sort(F.collect_set("destination_id")).alias("relevant")))
    return train, relevant


def rank_all(model: TravelRecommenderModel, cands: DataFrame, k: int, blends: list[tuple[float, float, float]],
             dest_ids: list[str]) -> DataFrame:
    """user_id, method, prediction (destination indexes as doubles, best first) for the baselines and each
    (content weight, popularity weight, diversity) blend, in one grouped pass over the candidates."""
    index = {d: float(i) for i, d in enumerate(dest_ids)}
    pre = model.with_context(cands).select("user_id", "destination_id", "popularity", "content", "cf", "content_z",
                                           "cf_z", "pop_z", "pop_pr", "kind", "focus")
    schema = "user_id string, method string, prediction array<double>"

    def per_user(pdf: pd.DataFrame) -> pd.DataFrame:
        pdf = pdf.sort_values(["popularity", "destination_id"], ascending=[False, True]).reset_index(drop=True)
        ids = [index.get(d, -1.0) for d in pdf["destination_id"]]
        rows = []
        for name, col in (("popularity", "popularity"), ("ALS only", "cf"), ("content only", "content")):
            v = pd.to_numeric(pdf[col], errors="coerce").fillna(-np.inf).to_numpy()
            order = np.argsort(-v, kind="stable")[:k]
            rows.append((name, [ids[i] for i in order]))
        cz, fz, pz, ppr = (pd.to_numeric(pdf[c], errors="coerce").to_numpy(dtype=float)
                           for c in ("content_z", "cf_z", "pop_z", "pop_pr"))
        kinds = pdf["kind"].tolist()
        for w, wp, div in blends:
            score = blend_scores(cz, fz, pz, ppr, w, wp)
            order = np.argsort(-score, kind="stable")
            pick = greedy_pick(score[order], [kinds[i] for i in order], k, user_diversity(pdf["focus"].iloc[0], div))
            rows.append((blend_name(w, wp, div), [ids[order[i]] for i in pick]))
        return pd.DataFrame({"user_id": pdf["user_id"].iloc[0], "method": [r[0] for r in rows],
                             "prediction": [r[1] for r in rows]})

    return pre.groupBy("user_id").applyInPandas(per_user, schema)


def blend_name(weight: float, popularity_weight: float, diversity: float) -> str:
    """Method name of one blend setting."""
    return f"blend c={weight:g} p={popularity_weight:g} d={diversity:g}"


def ranking_metrics(predictions: DataFrame, relevant: DataFrame, dest_ids: list[str], k: int,
                    metrics: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """{method: {precision@k, ndcg@k, MAP, users}} with MLlib's RankingEvaluator, for every method of
    `predictions` (user_id, method, prediction) against relevant sets (user_id, relevant destination ids)."""
    index = {d: float(i) for i, d in enumerate(dest_ids)}
    to_idx = F.udf(lambda xs: [index.get(x, -1.0) for x in (xs or [])], "array<double>")
    labels = relevant.select("user_id", to_idx("relevant").alias("label"))
    methods = [r["method"] for r in predictions.select("method").distinct().collect()]
    grid = labels.crossJoin(predictions.select("method").distinct())
    data = (grid.join(predictions, ["user_id", "method"], "left")
            .withColumn("prediction", F.coalesce("prediction", F.array().cast("array<double>")))
            .localCheckpoint())  # small; cutting the lineage keeps each evaluator's plan small
    counts = {r["method"]: r["count"] for r in data.groupBy("method").count().collect()}
    out: dict[str, dict[str, float]] = {}
    for method in methods:
        part = data.where(F.col("method") == method)
        out[method] = {name: float(RankingEvaluator(metricName=m, k=k).evaluate(part))
                       for name, m in (metrics or METRICS).items()}
        out[method]["users"] = counts.get(method, 0)
    return out


@dataclass
class RecommendEvaluation:
    """Tables of one evaluation run (lists of dict rows) and the tuned blend settings."""

    warm: list[dict] = field(default_factory=list)
    cold: list[dict] = field(default_factory=list)
    # Blend minus each baseline, ndcg@k per user: mean and 95% paired-bootstrap interval ("warm"/"cold" -> rows).
    gains: dict[str, list[dict]] = field(default_factory=dict)
    validation: list[dict] = field(default_factory=list)
    content_weight: float = 0.5
    popularity_weight: float = 0.0
    diversity: float = 0.0
    als_params: dict = field(default_factory=dict)       # the blend's ALS settings, chosen on validation
    als_only_params: dict = field(default_factory=dict)  # ALS alone's, chosen on validation
    new_user_content_weight: float = -1.0  # users ALS never saw: share of content (rest popularity), on validation
    new_user_diversity: float = 0.0
    k: int = 10


def evaluate_recommenders(photos: DataFrame, catalog_path: str, labels: list[str], scene_count: int, k: int = 10,
                          weights: tuple[float, ...] = (0.0, 0.2, 0.35, 0.5, 0.65, 0.8, 1.0),
                          popularity_weights: tuple[float, ...] = (0.0, 0.2, 0.4),
                          diversities: tuple[float, ...] = (0.0, 0.1, 0.3), cold_fraction: float = 0.25,
                          cold_photos: int = 5, seed: int = 0, als_params: dict | None = None,
                          als_grid: list[dict] | None = None) -> RecommendEvaluation:
    """Held-out-last-trip evaluation of popularity, ALS only, content only and the tuned blend, warm and cold.

    `photos` need user_id, trip_id, taken_at, destination_id, interest, joint_embedding; `catalog_path` is the
    destinations catalog the recommender reads (`load_catalog`). Cold-start users are a seeded `cold_fraction` of
    the evaluable users: they keep only their first `cold_photos` training photos and are hidden from ALS, so the
    blend serves them by content and popularity. `als_grid` (a list of ALS settings, e.g. `[{"rank": 2},
    {"rank": 8}]`) is searched on validation, for the blend and for ALS alone apart.
    """
    split = _EvalSplit.make(photos, catalog_path, seed, cold_fraction, cold_photos)
    params = dict(labels=labels, sceneCount=scene_count, seed=seed, catalogPath=str(catalog_path),
                  cfExcludedUsers=split.cold_ids)
    result = RecommendEvaluation(k=k)
    # Every (content, popularity) pair that leaves ALS a share >= 0, with each variety penalty.
    blends = [(w, p, d) for w in weights for p in popularity_weights if w + p <= 1.0 + 1e-9 for d in diversities]
    grid = [dict(g) for g in (als_grid or [als_params or {}])]
    gi, als_only = _tune_on_validation(split, params, grid, blends, k, result)
    result.als_params, result.als_only_params = grid[gi], grid[als_only]
    pred = _test_predictions(split, params, grid, gi, als_only, k, result)
    order = ["popularity", "ALS only", "content only", "blend"]
    is_cold = F.col("user_id").isin(split.cold_ids)
    warm = ranking_metrics(pred, split.relevant.where(~is_cold), split.dest_ids, k)
    result.warm = [{"method": m, **warm[m]} for m in order if m in warm]
    if split.cold_ids:
        cold_res = ranking_metrics(pred, split.relevant.where(is_cold), split.dest_ids, k)
        result.cold = [{"method": m, **cold_res[m]} for m in order if m in cold_res]
    result.gains = _bootstrap_gains(pred, split, k, order, seed)
    pred.unpersist()
    return result


@dataclass
class _EvalSplit:
    """The rows one evaluation works on: training photos, held-out relevant sets, cold-start users, destinations."""

    train: DataFrame
    relevant: DataFrame
    cold_ids: list[str]
    cold_photos: int
    dest_ids: list[str]

    @classmethod
    def make(cls, photos: DataFrame, catalog_path: str, seed: int, cold_fraction: float,
             cold_photos: int) -> _EvalSplit:
        catalog = load_catalog(photos.sparkSession, catalog_path)
        dest_ids = [r["destination_id"] for r in catalog.select("destination_id").orderBy("destination_id").collect()]
        keep = [c for c in ("photo_id", "user_id", "trip_id", "taken_at", "latitude", "destination_id", "interest",
                            "joint_embedding") if c in photos.columns]
        # Materialised with their lineage cut (localCheckpoint, not cache): Spark renders a cached table's whole plan
        # into the plan of every query that reads it, and the fits and rankings below stack many such queries (a
        # Java heap OOM at 16,000 photos with cache()).
        photos = photos.select(*keep).localCheckpoint()
        train, relevant = last_trip_split(photos)
        relevant = relevant.localCheckpoint()
        users = relevant.select("user_id").distinct()
        cold = users.where(F.abs(F.hash(F.concat(F.col("user_id"), F.lit(str(seed))))) % 1000
                           < cold_fraction * 1000)
        return cls(train, relevant, [r["user_id"] for r in cold.collect()], cold_photos, dest_ids)

    def truncate(self, df: DataFrame) -> DataFrame:
        """Cold-start users keep only their first `cold_photos` photos."""
        w = Window.partitionBy("user_id").orderBy("taken_at", "photo_id" if "photo_id" in df.columns else "taken_at")
        df = df.withColumn("_i", F.row_number().over(w))
        return df.where(~F.col("user_id").isin(self.cold_ids) | (F.col("_i") <= self.cold_photos)).drop("_i")


def _tune_on_validation(split: _EvalSplit, params: dict, grid: list[dict], blends: list[tuple[float, float, float]],
                        k: int, result: RecommendEvaluation) -> tuple[int, int]:
    """Hide the last training trip; tune the blend (with its ALS settings), apart ALS alone, and apart the new
    users' content share. Fills `result` (validation rows, blend and new-user settings); returns the grid indexes of
    the blend's and ALS alone's ALS settings."""
    vtrain, vrel = last_trip_split(split.train)
    vtrain = split.truncate(vtrain).localCheckpoint()
    vrel_cold = vrel.where(F.col("user_id").isin(split.cold_ids)).localCheckpoint()
    vrel = vrel.where(~F.col("user_id").isin(split.cold_ids))
    best, best_als, best_cold = (-1.0, 0, 0.5, 0.0, 0.0), (-1.0, 0), (-1.0, -1.0, 0.0)
    for gi, als in enumerate(grid):
        vmodel = TravelRecommender(**params, **als).fit(vtrain)
        # localCheckpoint, not cache: the ranked table is small, but its plan (every blend of the grid) is huge, and
        # Spark renders a cached plan into every later query's plan string (a Java heap OOM on 1,000 photos).
        vpred = rank_all(vmodel, vmodel.candidates(), k, blends, split.dest_ids).localCheckpoint()
        vres = ranking_metrics(vpred, vrel, split.dest_ids, k, {"ndcg@k": "ndcgAtK"})
        if gi == 0 and split.cold_ids and not vrel_cold.isEmpty():
            # New users: ALS never saw them, so only the blend's content : popularity proportion matters to them.
            cres = ranking_metrics(vpred, vrel_cold, split.dest_ids, k, {"ndcg@k": "ndcgAtK"})
            for w, p, d in blends:
                m = cres[blend_name(w, p, d)]["ndcg@k"]
                if m > best_cold[0] + 1e-9:
                    best_cold = (m, new_user_share(w, p), d)
        vpred.unpersist()
        vmodel.unpersist()
        if vres["ALS only"]["ndcg@k"] > best_als[0] + 1e-9:
            best_als = (vres["ALS only"]["ndcg@k"], gi)
        for w, p, d in blends:
            m = vres[blend_name(w, p, d)]
            result.validation.append({"content_weight": w, "popularity_weight": p, "diversity": d, "als": als, **m})
            if m["ndcg@k"] > best[0] + 1e-9:
                best = (m["ndcg@k"], gi, w, p, d)
    _, gi, result.content_weight, result.popularity_weight, result.diversity = best
    if best_cold[0] >= 0:
        result.new_user_content_weight, result.new_user_diversity = best_cold[1], best_cold[2]
    else:  # no new user to tune on: as the blend would serve them
        result.new_user_content_weight = new_user_share(result.content_weight, result.popularity_weight)
        result.new_user_diversity = result.diversity
    return gi, best_als[1]


def _test_predictions(split: _EvalSplit, params: dict, grid: list[dict], gi: int, als_only: int, k: int,
                      result: RecommendEvaluation) -> DataFrame:
    """Fit on all training photos and rank each method for the held-out users (ALS alone with the settings it did
    best with on validation, the blend with its own; new users with their tuned content share)."""
    train = split.truncate(split.train).localCheckpoint()
    chosen = (result.content_weight, result.popularity_weight, result.diversity)
    # A blend whose content : popularity proportion is the new users' tuned one ranks them as tuned.
    chosen_new = (result.new_user_content_weight, 1.0 - result.new_user_content_weight, result.new_user_diversity)
    name_warm, name_new = blend_name(*chosen), blend_name(*chosen_new)
    methods_by_setting = {gi: ["popularity", "content only", "blend"]}
    methods_by_setting.setdefault(als_only, []).append("ALS only")
    preds = []
    for g, methods in methods_by_setting.items():
        model = TravelRecommender(**params, **grid[g]).fit(train)
        ranked = rank_all(model, model.candidates(), k, list(dict.fromkeys([chosen, chosen_new])), split.dest_ids)
        is_new = F.col("user_id").isin(split.cold_ids)
        own = F.when(is_new, F.col("method") == name_new).otherwise(F.col("method") == name_warm)
        ranked = (ranked.where(~F.col("method").startswith("blend") | own)
                  .withColumn("method", F.when(F.col("method").startswith("blend"), "blend")
                              .otherwise(F.col("method"))))
        preds.append(ranked.where(F.col("method").isin(methods)).localCheckpoint())
        model.unpersist()
    return preds[0] if len(preds) == 1 else preds[0].unionByName(preds[1])


def _bootstrap_gains(pred: DataFrame, split: _EvalSplit, k: int, order: list[str], seed: int
                     ) -> dict[str, list[dict]]:
    """Blend minus each baseline, ndcg@k per user, warm and cold apart: mean and 95% paired-bootstrap interval
    (from one small row per (user, method), the evaluation's own output)."""
    index = {d: float(i) for i, d in enumerate(split.dest_ids)}
    rel = {r["user_id"]: {index.get(x, -1.0) for x in r["relevant"]} for r in split.relevant.collect()}
    per_user: dict[str, dict[str, float]] = {}
    for r in pred.collect():
        if r["user_id"] in rel:
            per_user.setdefault(r["method"], {})[r["user_id"]] = ndcg_at_k(r["prediction"], rel[r["user_id"]], k)
    gains: dict[str, list[dict]] = {}
    cold = set(split.cold_ids)
    for group, users_in in (("warm", [u for u in rel if u not in cold]), ("cold", split.cold_ids)):
        users_in = sorted(u for u in users_in if u in rel)
        if users_in and "blend" in per_user:
            gains[group] = [{"baseline": m, **paired_bootstrap(
                [per_user["blend"].get(u, 0.0) for u in users_in], [per_user[m].get(u, 0.0) for u in users_in],
                seed=seed)} for m in order[:-1] if m in per_user]
    return gains


def ndcg_at_k(prediction: list[float], relevant: set[float], k: int) -> float:
    """ndcg@k of one ranked list against a set of relevant items, with binary gains (MLlib's `ndcgAtK`)."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / np.log2(i + 2) for i, x in enumerate(list(prediction)[:k]) if x in relevant)
    ideal = sum(1.0 / np.log2(i + 2) for i in range(min(k, len(relevant))))
    return float(dcg / ideal)


def paired_bootstrap(a: list[float], b: list[float], draws: int = 4000, seed: int = 0) -> dict[str, float]:
    """Mean of a - b over paired samples and its 95% bootstrap interval (users resampled with replacement)."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(draws, len(d)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"gain": float(d.mean()), "low": float(lo), "high": float(hi), "users": len(d)}
