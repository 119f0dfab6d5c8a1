"""Travel suggestions: unvisited destinations ranked by a blend of content similarity, collaborative filtering and
popularity.

Content: a user's profile (mean interest distribution and mean joint-space embedding of their photos) against each
destination's profile (the same, from the photos taken there, shrunk towards its kind's photos, and its catalog
description), both centred on their own means. Collaborative: MLlib `ALS` with implicit feedback on user x
destination visits. Each, with log popularity, is turned into per-user standard scores and blended
(`contentWeight`, `popularityWeight`, tuned on validation by `wanderlens.travel.evaluate`); users ALS has never seen
are served by content and popularity. A greedy re-rank keeps kinds varied unless the user only photographs one
kind, and every suggestion carries its reasons in words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.errors import AnalysisException
from pyspark.ml import Estimator, Model
from pyspark.ml.feature import StringIndexer, StringIndexerModel
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasMaxIter, HasRegParam, HasSeed
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.config import TravelConfig
from wanderlens.errors import InputError
from wanderlens.persistence import DataStage
from wanderlens.travel.profiles import (
    cosine_expr,
    destination_profiles,
    mean_arrays,
    mean_interest,
    user_profiles,
)
from wanderlens.travel.trips import join_words, plural, require_columns


def load_catalog(spark: SparkSession, path: str | Path) -> DataFrame:
    """The destinations catalog at `path`, on any Hadoop file system: a `.csv` file (as the sample's
    destinations.csv, `tags` `;`-separated) or a Parquet table (as the travel job's `catalog`, with
    `description_embedding`). It needs destination_id and name; country, kind, description, tags are optional."""
    p = str(path)
    try:
        cat = spark.read.csv(p, header=True, inferSchema=False) if p.lower().endswith(".csv") else \
            spark.read.parquet(p)
    except AnalysisException as exc:
        raise InputError(f"destinations catalog not readable at {p}: {str(exc).splitlines()[0]} (pass the "
                         "destinations.csv of the collection, or the `catalog` table the travel job wrote)") from None
    missing = [c for c in ("destination_id", "name") if c not in cat.columns]
    if missing:
        raise InputError(f"destinations catalog {p}: missing column(s) {', '.join(missing)}; "
                         "it needs destination_id and name (country, kind, description, tags optional)")
    if "tags" in cat.columns and isinstance(cat.schema["tags"].dataType, T.StringType):
        cat = cat.withColumn("tags", F.split(F.coalesce(F.col("tags"), F.lit("")), ";"))
    return cat


class _RecParams(HasMaxIter, HasRegParam, HasSeed):
    """Params shared by `TravelRecommender` and its model; the blend, variety and count defaults come from
    `TravelConfig` (the values tuned by bench_travel), the ALS ones are MLlib-style settings of this stage."""

    labels = Param(Params._dummy(), "labels", "interest labels: scene classes then attribute labels",
                   TypeConverters.toListString)
    sceneCount = Param(Params._dummy(), "sceneCount", "how many of `labels` are scene classes", TypeConverters.toInt)
    catalogPath = Param(Params._dummy(), "catalogPath",
                        "destinations catalog: a .csv file or a Parquet table (any Hadoop path), see load_catalog",
                        TypeConverters.toString)
    cfExcludedUsers = Param(Params._dummy(), "cfExcludedUsers",
                            "users whose visits ALS must not see (cold-start evaluation)", TypeConverters.toListString)
    rank = Param(Params._dummy(), "rank", "ALS rank", TypeConverters.toInt)
    alpha = Param(Params._dummy(), "alpha", "ALS implicit confidence scale", TypeConverters.toFloat)
    contentWeight = Param(Params._dummy(), "contentWeight",
                          "share of content similarity in the blend", TypeConverters.toFloat)
    popularityWeight = Param(Params._dummy(), "popularityWeight",
                             "share of popularity in the blend (ALS gets 1 - contentWeight - popularityWeight)",
                             TypeConverters.toFloat)
    newUserContentWeight = Param(Params._dummy(), "newUserContentWeight",
                                 "for users ALS never saw: share of content (the rest popularity); negative: "
                                 "contentWeight and popularityWeight in proportion", TypeConverters.toFloat)
    priorPhotos = Param(Params._dummy(), "priorPhotos",
                        "photos' worth of its kind's mean that a destination profile is shrunk towards",
                        TypeConverters.toFloat)
    interestWeight = Param(Params._dummy(), "interestWeight",
                           "share of the interest-distribution cosine in content similarity (rest: embedding)",
                           TypeConverters.toFloat)
    diversity = Param(Params._dummy(), "diversity",
                      "penalty per already-suggested destination of the same kind (in standard-score units)",
                      TypeConverters.toFloat)
    descriptionWeight = Param(Params._dummy(), "descriptionWeight",
                              "share of the catalog description in a destination's embedding", TypeConverters.toFloat)
    numSuggestions = Param(Params._dummy(), "numSuggestions", "suggestions per user (transform)", TypeConverters.toInt)

    def __init__(self) -> None:
        super().__init__()
        travel = TravelConfig()
        self._setDefault(labels=[], sceneCount=0, catalogPath="", cfExcludedUsers=[], rank=8, regParam=0.1,
                         alpha=1.0, maxIter=10, contentWeight=travel.content_weight,
                         popularityWeight=travel.popularity_weight,
                         newUserContentWeight=travel.new_user_content_weight, priorPhotos=10.0, interestWeight=0.5,
                         diversity=travel.diversity, descriptionWeight=0.3, seed=travel.seed,
                         numSuggestions=travel.suggestions_per_user)


def recommender_params(travel: TravelConfig) -> dict[str, Any]:
    """The TravelRecommender Params a travel config sets (blend weights, variety, suggestions, seed)."""
    return {"contentWeight": travel.content_weight, "popularityWeight": travel.popularity_weight,
            "newUserContentWeight": travel.new_user_content_weight, "diversity": travel.diversity,
            "numSuggestions": travel.suggestions_per_user, "seed": travel.seed}


class TravelRecommender(Estimator, _RecParams, DefaultParamsReadable, DefaultParamsWritable):
    """Fits profiles and ALS on photos (user_id, destination_id, interest, joint_embedding[, trip_id, taken_at]).

    Constructed without data, like every pyspark.ml stage: the destinations catalog (destination_id, name[, kind,
    country, description_embedding]) is read at fit time from `catalogPath`, so the estimator and its model save and
    load with pyspark.ml persistence and sit in a `Pipeline`. `labels` names the values of the `interest` vectors.
    """

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> TravelRecommender:
        """Set any of the Params by name."""
        return self._set(**self._input_kwargs)

    def _check_interest(self, photos: DataFrame) -> None:
        """A clear error when `labels` is unset or does not match the interest vectors' length."""
        labels, sc = self.getOrDefault(self.labels), self.getOrDefault(self.sceneCount)
        if not labels:
            raise InputError("TravelRecommender: the `labels` Param is empty; set it to the names of the `interest` "
                             "values (scene classes, then attribute labels: task_roles(model.tasks).interest_labels, "
                             "or `interest_labels` in the travel job's summary.json)")
        if not 0 <= sc <= len(labels):
            raise InputError(f"TravelRecommender: sceneCount is {sc} but `labels` has {len(labels)} names; "
                             "sceneCount counts the scene classes at the start of `labels`")
        lo, hi = photos.where(F.col("interest").isNotNull()).agg(
            F.min(F.size("interest")), F.max(F.size("interest"))).first()
        if lo is None:
            raise InputError("TravelRecommender: no photo has an `interest` vector; pass the travel job's photos")
        if lo != len(labels) or hi != len(labels):
            got = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise InputError(f"TravelRecommender: the `interest` vectors have {got} values but `labels` names "
                             f"{len(labels)}; `labels` must name every interest value, in order")

    def _fit(self, photos: DataFrame) -> TravelRecommenderModel:
        g = self.getOrDefault
        require_columns(photos, ["user_id", "destination_id", "interest", "joint_embedding"], "TravelRecommender")
        self._check_interest(photos)
        if not g(self.catalogPath):
            raise InputError("TravelRecommender: set catalogPath to the destinations catalog (a .csv file or the "
                             "travel job's `catalog` Parquet table)")
        catalog = load_catalog(photos.sparkSession, g(self.catalogPath))
        labels, sc = list(g(self.labels)), g(self.sceneCount)
        # Profiles and visits are small and read many times (scoring, reasons, saving): keep them cached.
        baseline = mean_interest(photos)
        users = user_profiles(photos, labels, sc, baseline).cache()
        dests = destination_profiles(photos, catalog, labels, sc, g(self.descriptionWeight), baseline,
                                     g(self.priorPhotos)).cache()
        visits = (photos.where(F.col("destination_id").isNotNull())
                  .groupBy("user_id", "destination_id").agg(F.count("*").alias("photos"))).cache()
        didx = StringIndexer(inputCol="destination_id", outputCol="dest_idx", handleInvalid="keep").fit(
            catalog.select("destination_id"))
        excluded = list(g(self.cfExcludedUsers))
        cf_visits = visits.where(~F.col("user_id").isin(excluded)) if excluded else visits
        uidx = StringIndexer(inputCol="user_id", outputCol="user_idx", handleInvalid="keep").fit(cf_visits)
        ratings = didx.transform(uidx.transform(cf_visits)).withColumn("rating", F.log1p("photos"))
        als = ALS(userCol="user_idx", itemCol="dest_idx", ratingCol="rating", implicitPrefs=True, rank=g(self.rank),
                  regParam=g(self.regParam), alpha=g(self.alpha), maxIter=g(self.maxIter), seed=g(self.seed),
                  coldStartStrategy="nan", nonnegative=True)
        model = TravelRecommenderModel()._set_fitted(users, dests, visits.select("user_id", "destination_id"), uidx,
                                                     didx, als.fit(ratings))
        return self._copyValues(model)


def _percentile(col: str, part: str = "user_id"):
    w = Window.partitionBy(part).orderBy(F.col(col).asc_nulls_first())
    return F.when(F.col(col).isNull() | F.isnan(col), F.lit(None)).otherwise(F.percent_rank().over(w))


class TravelRecommenderModel(Model, _RecParams, DataStage):
    """Scores unvisited destinations for users, re-ranks them for variety and explains each suggestion.

    Its data (user and destination profiles, visits, the two indexers and the ALS model) are saved beside its
    Params by `wanderlens.persistence`, on any Hadoop path."""

    def __init__(self) -> None:
        super().__init__()
        self.users: DataFrame | None = None
        self.destinations: DataFrame | None = None
        self.visits: DataFrame | None = None
        self.user_indexer: StringIndexerModel | None = None
        self.dest_indexer: StringIndexerModel | None = None
        self.als_model: ALSModel | None = None

    def _set_fitted(self, users: DataFrame, destinations: DataFrame, visits: DataFrame,
                    user_indexer: StringIndexerModel, dest_indexer: StringIndexerModel,
                    als_model: ALSModel) -> TravelRecommenderModel:
        self.users, self.destinations, self.visits = users, destinations, visits
        self.user_indexer, self.dest_indexer, self.als_model = user_indexer, dest_indexer, als_model
        return self

    def _stage_data(self) -> dict[str, Any]:
        return {"users": self.users, "destinations": self.destinations, "visits": self.visits,
                "user_indexer": self.user_indexer, "dest_indexer": self.dest_indexer, "als": self.als_model}

    def _set_stage_data(self, data: dict[str, Any]) -> None:
        self._set_fitted(data["users"], data["destinations"], data["visits"], data["user_indexer"],
                         data["dest_indexer"], data["als"])

    def candidates(self, users: DataFrame | None = None) -> DataFrame:
        """Every (user, unvisited destination) with `content`, `cf` (null for users ALS never saw), `popularity`,
        their per-user percentiles `content_pr`, `cf_pr`, `pop_pr` (for reasons) and per-user standard scores
        `content_z`, `cf_z`, `pop_z` (log popularity) that the blend adds up."""
        g = self.getOrDefault
        u = self.users if users is None else self.users.join(users.select("user_id").distinct(), "user_id")
        # Content similarity compares what sets a user apart from other users with what sets a place apart from
        # other places: each side is centred on its own mean first, or every cosine is dominated by what all
        # photos share (and places photographed more, being closer to that mean, would win).
        uc, dc = self._centers()
        u = u.crossJoin(F.broadcast(uc)).select(
            "user_id", _minus("interest", "_c_int").alias("u_int"), _minus("embedding", "_c_emb").alias("u_emb"))
        d = self.destinations.crossJoin(F.broadcast(dc)).select(
            "destination_id", _minus("interest", "_c_int").alias("d_int"), _minus("embedding", "_c_emb").alias("d_emb"),
            F.col("visitors").alias("popularity"))
        pairs = u.crossJoin(d).join(self.visits, ["user_id", "destination_id"], "left_anti")
        iw = float(g(self.interestWeight))
        pairs = pairs.withColumn(
            "content", F.expr(f"{iw} * {cosine_expr('u_int', 'd_int')} + {1 - iw} * {cosine_expr('u_emb', 'd_emb')}")
        ).drop("u_int", "u_emb", "d_int", "d_emb")
        idx = self.dest_indexer.transform(self.user_indexer.transform(pairs))
        scored = self.als_model.transform(idx).withColumnRenamed("prediction", "cf")
        scored = scored.withColumn("cf", F.when(F.isnan("cf"), None).otherwise(F.col("cf").cast("double")))
        # For a user ALS knows, a place no one visited has no ALS factors: it ranks last by ALS, not unranked.
        known_user = F.col("user_idx") < F.lit(float(len(self.user_indexer.labels)))
        scored = scored.withColumn("_known", known_user).drop("user_idx", "dest_idx")
        per_user = Window.partitionBy("user_id")
        cf_floor = F.coalesce(F.col("cf"), F.min("cf").over(per_user))
        return (scored.withColumn("content_pr", _percentile("content"))
                .withColumn("cf_pr", F.when(F.col("_known"), F.coalesce(_percentile("cf"), F.lit(0.0))))
                .withColumn("pop_pr", _percentile("popularity"))
                .withColumn("content_z", _standard(F.col("content")))
                .withColumn("cf_z", F.when(F.col("_known"), F.coalesce(_standard(cf_floor), F.lit(0.0))))
                .withColumn("pop_z", _standard(F.log1p("popularity"))).drop("_known"))

    def unpersist(self) -> TravelRecommenderModel:
        """Drop the cached profiles and visits (a model used once, as in an evaluation loop)."""
        for df in (self.users, self.destinations, self.visits):
            df.unpersist()
        return self

    def _centers(self) -> tuple[DataFrame, DataFrame]:
        """One-row tables of the mean interest and embedding (`_c_int`, `_c_emb`) over users and over destinations."""
        return tuple(mean_arrays(t.withColumn("_all", F.lit(1)), "_all",
                                 {"interest": "_c_int", "embedding": "_c_emb"}).drop("_all")
                     for t in (self.users, self.destinations))

    def blend(self, cands: DataFrame, content_weight: float | None = None,
              popularity_weight: float | None = None) -> DataFrame:
        """Adds `score`: the weighted sum of the per-user standard scores of content, ALS and log popularity; where
        ALS has no opinion (users it never saw) the other two share its weight in proportion.

        Standard scores, not ranks: popularity is long-tailed and a rank would squash the gap between the few places
        everybody goes and the rest."""
        g = self.getOrDefault
        wc = float(g(self.contentWeight) if content_weight is None else content_weight)
        wp = float(g(self.popularityWeight) if popularity_weight is None else popularity_weight)
        wf = max(0.0, 1.0 - wc - wp)
        n = new_user_share(wc, wp, float(g(self.newUserContentWeight)))
        # A tiny popularity term breaks ties between equally scored candidates.
        without_cf = n * F.col("content_z") + (1.0 - n) * F.col("pop_z")
        return cands.withColumn(
            "score", F.coalesce(wc * F.col("content_z") + wf * F.col("cf_z") + wp * F.col("pop_z"), without_cf)
            + 1e-3 * F.col("pop_pr"))

    def focus(self) -> DataFrame:
        """user_id, `focus`: the share of a user's scene interest held by their top scene (1.0: one kind only)."""
        sc = max(self.getOrDefault(self.sceneCount), 1)
        return self.users.select("user_id", F.expr(
            f"array_max(slice(interest, 1, {sc})) / greatest(aggregate(slice(interest, 1, {sc}), 0D, "
            f"(s, v) -> s + v), 1e-9)").alias("focus"))

    def with_context(self, scored: DataFrame) -> DataFrame:
        """Adds each candidate's destination `kind` and its user's `focus` (what the variety re-rank needs)."""
        kinds = self.destinations.select("destination_id", "kind")
        return scored.join(kinds, "destination_id", "left").join(self.focus(), "user_id", "left")

    def rerank(self, scored: DataFrame, k: int, diversity: float | None = None, score_col: str = "score"
               ) -> DataFrame:
        """Top-k per user by `score_col`, greedily penalising repeated kinds unless the user only likes one kind;
        adds `rank` (1-based)."""
        lam = float(self.getOrDefault(self.diversity) if diversity is None else diversity)
        # Keep a few times k per user before the greedy pass (cheap on executors).
        w = Window.partitionBy("user_id").orderBy(F.desc(score_col), "destination_id")
        pre = self.with_context(scored.withColumn("_r", F.row_number().over(w)).where(F.col("_r") <= 4 * k)
                                .drop("_r"))
        out_schema = T.StructType(pre.schema.fields + [T.StructField("rank", T.IntegerType())])

        def greedy(pdf: pd.DataFrame) -> pd.DataFrame:
            pdf = pdf.sort_values([score_col, "destination_id"], ascending=[False, True]).reset_index(drop=True)
            lam_u = user_diversity(pdf["focus"].iloc[0], lam)
            chosen = greedy_pick(pdf[score_col].to_numpy(), pdf["kind"].tolist(), k, lam_u)
            res = pdf.iloc[chosen].copy()
            res["rank"] = range(1, len(res) + 1)
            return res

        return pre.groupBy("user_id").applyInPandas(greedy, out_schema).drop("focus")

    def anchors(self) -> DataFrame:
        """For each (user, destination): the user's visited place most co-visited with it (for 'also went')."""
        v = self.visits
        co = (v.alias("a").join(v.alias("b"), F.col("a.user_id") == F.col("b.user_id"))
              .where(F.col("a.destination_id") != F.col("b.destination_id"))
              .groupBy(F.col("a.destination_id").alias("anchor_id"), F.col("b.destination_id").alias("destination_id"))
              .agg(F.count("*").alias("co_visits")))
        per_user = v.withColumnRenamed("destination_id", "anchor_id").join(co, "anchor_id")
        w = Window.partitionBy("user_id", "destination_id").orderBy(F.desc("co_visits"), "anchor_id")
        names = self.destinations.select(F.col("destination_id").alias("anchor_id"), F.col("name").alias("anchor"))
        return (per_user.withColumn("_r", F.row_number().over(w)).where("_r = 1").drop("_r")
                .join(names, "anchor_id", "left").select("user_id", "destination_id", "anchor", "co_visits"))

    def recommend(self, users: DataFrame | None = None, k: int = 10) -> DataFrame:
        """Suggestions: user_id, rank, destination_id, name, country, kind, score, content, cf, reason."""
        cands = self.blend(self.candidates(users))
        top = self.rerank(cands, k)
        d = self.destinations.select("destination_id", "name", "country", F.col("top_labels").alias("d_labels"))
        u = self.users.select("user_id", F.col("top_labels").alias("u_labels"))
        top = top.join(d, "destination_id", "left").join(u, "user_id", "left").join(
            self.anchors(), ["user_id", "destination_id"], "left")
        scenes = list(self.getOrDefault(self.labels))[: self.getOrDefault(self.sceneCount)]
        reason_udf = F.udf(lambda ul, dl, name, anchor, cpr, fpr: suggestion_reason(
            ul or [], dl or [], name, anchor, cpr, fpr, scenes), T.StringType())
        top = top.withColumn("reason", reason_udf("u_labels", "d_labels", "name", "anchor", "content_pr", "cf_pr"))
        return top.select("user_id", "rank", "destination_id", "name", "country", "kind", "score", "content", "cf",
                          "reason").orderBy("user_id", "rank")

    def _transform(self, users: DataFrame) -> DataFrame:
        """Suggestions for the users of `users` (a DataFrame with user_id)."""
        return self.recommend(users, self.getOrDefault(self.numSuggestions))


def user_diversity(focus: float | None, diversity: float) -> float:
    """The variety penalty for one user: none for a user whose photos are (almost) all one kind."""
    f = 0.0 if focus is None or focus != focus else float(focus)
    return diversity * max(0.0, 1.0 - max(0.0, f - 0.5) / 0.4)


def greedy_pick(scores: np.ndarray, kinds: list, k: int, penalty: float) -> list[int]:
    """Indices of k items chosen greedily by score minus `penalty` per already chosen item of the same kind
    (`scores` sorted best first; ties keep that order)."""
    chosen: list[int] = []
    counts: dict = {}
    remaining = list(range(len(scores)))
    while remaining and len(chosen) < k:
        best = max(remaining, key=lambda i: (scores[i] - penalty * counts.get(kinds[i], 0), -i))
        chosen.append(best)
        remaining.remove(best)
        counts[kinds[best]] = counts.get(kinds[best], 0) + 1
    return chosen


def new_user_share(content_weight: float, popularity_weight: float, new_user_content_weight: float = -1.0) -> float:
    """Share of content (the rest popularity) for users ALS never saw: `new_user_content_weight` when it is set
    (>= 0), else content and popularity in the proportion of their blend weights."""
    if new_user_content_weight >= 0:
        return min(1.0, new_user_content_weight)
    total = content_weight + popularity_weight
    return content_weight / total if total > 0 else 0.0


def blend_scores(content_z: np.ndarray, cf_z: np.ndarray, pop_z: np.ndarray, pop_pr: np.ndarray, weight: float,
                 popularity_weight: float = 0.0, new_user_content_weight: float = -1.0) -> np.ndarray:
    """Numpy twin of `TravelRecommenderModel.blend` (content and popularity alone where ALS has no opinion)."""
    wc, wp = weight, popularity_weight
    wf = max(0.0, 1.0 - wc - wp)
    mix = wc * content_z + wf * cf_z + wp * pop_z
    n = new_user_share(wc, wp, new_user_content_weight)
    without_cf = n * content_z + (1.0 - n) * pop_z
    return np.where(np.isnan(mix), without_cf, mix) + 1e-3 * np.nan_to_num(pop_pr)


def _standard(x):
    """Per-user standard score of a column over the user's candidates (0 when they are all equal)."""
    w = Window.partitionBy("user_id")
    return (x - F.avg(x).over(w)) / (F.coalesce(F.stddev_pop(x).over(w), F.lit(0.0)) + F.lit(1e-9))


def _minus(col: str, center: str):
    """Element-wise `col - center` (array columns); `col` unchanged where there is no center."""
    return F.when(F.col(center).isNull(), F.col(col)).otherwise(
        F.zip_with(col, center, lambda a, b: a - b))


def _label_phrase(label: str, scenes: list[str]) -> str:
    return plural(label) if label in scenes else label.replace("_", " ")


def suggestion_reason(user_labels: list[str], dest_labels: list[str], name: str, anchor: str | None,
                      content_pr: float | None, cf_pr: float | None, scenes: list[str]) -> str:
    """Why a destination is suggested, in words: shared interests, similar travellers, or both."""
    parts = []
    shared = [lbl for lbl in user_labels if lbl in dest_labels][:3]
    if shared:
        likes = join_words([_label_phrase(x, scenes) for x in shared])
        has = {1: "has them too", 2: "has both", 3: "has all three"}[len(shared)]
        if len(shared) == 1 and shared[0] not in scenes:
            has = "has it too"
        parts.append(f"you photograph {likes}; {name} {has}")
    elif content_pr is not None and content_pr >= 0.6 and dest_labels:
        what = join_words([_label_phrase(x, scenes) for x in dest_labels[:2]])
        parts.append(f"{name} looks like your photos ({what})")
    if cf_pr is not None and cf_pr >= 0.5:
        if anchor:
            parts.append(f"travellers who went to {anchor} also went to {name}")
        else:
            parts.append(f"travellers with similar photos also went to {name}")
    if not parts:
        parts.append(f"{name} is popular with travellers and new to you")
    s = "; ".join(parts)
    return s[:1].upper() + s[1:]
