"""Travel suggestions from visit histories: where a traveller is likely to go next, and why.

Input: visits `(user_id, destination_id, trip_id, visited_at)` (check-ins, bookings) or photos (`taken_at`, many
rows per visit; `interest` and `joint_embedding` when present add the photo-content signal), and the destinations
catalog (kind, coordinates) read from `catalogPath`. `wanderlens.travel.signals` computes, with Spark, one column per
signal (popularity with time decay, ALS, co-visitation, trip-to-trip transitions, three geographic signals, season,
kind, content); `wanderlens.travel.ranker` learns to rank with them on validation trips (each user's last trips of
the training data hidden in turn, `rankerQueries` of them) and keeps the learned ranker only if it beats every single
signal on held-out validation users ("auto"; else the best signal). Suggestions carry reasons read from the signals
that added most to their score. `rank_users` ranks many users without reasons (evaluation); `recommend` adds reasons
only for what is shown.
"""

from __future__ import annotations

from functools import reduce
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.errors import AnalysisException
from pyspark.ml import Estimator, Model
from pyspark.ml.feature import StringIndexer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasMaxIter, HasRegParam, HasSeed
from pyspark.ml.recommendation import ALS
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.config import TravelConfig
from wanderlens.errors import InputError
from wanderlens.persistence import DataStage
from wanderlens.travel.profiles import cosine_expr, destination_profiles, mean_arrays, mean_interest, user_profiles
from wanderlens.travel.ranker import RANKER, RankerChoice, choose_method, contributions, ranked_lists, top_k, with_score
from wanderlens.travel.signals import SIGNALS, AlsParts, compute_signals, places_table
from wanderlens.travel.trips import join_words, plural, require_columns
from wanderlens.travel.visits import check_places, last_trip_split, visits_from_rows


def load_catalog(spark: SparkSession, path: str | Path) -> DataFrame:
    """The destinations catalog at `path`, on any Hadoop file system: a `.csv` file (as the sample's
    destinations.csv, `tags` `;`-separated) or a Parquet table (as the travel job's `catalog`, with
    `description_embedding`). It needs destination_id and name; country, kind, latitude, longitude, description,
    tags are optional (without coordinates the geographic signals are 0)."""
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
    """Params shared by `TravelRecommender` and its model; defaults come from `TravelConfig` (the values measured
    best by bench_travel), the ALS ones are MLlib-style settings of this stage."""

    labels = Param(Params._dummy(), "labels", "interest labels: scene classes then attribute labels (needed when "
                   "the input has an `interest` column)", TypeConverters.toListString)
    sceneCount = Param(Params._dummy(), "sceneCount", "how many of `labels` are scene classes", TypeConverters.toInt)
    catalogPath = Param(Params._dummy(), "catalogPath",
                        "destinations catalog: a .csv file or a Parquet table (any Hadoop path), see load_catalog",
                        TypeConverters.toString)
    cfExcludedUsers = Param(Params._dummy(), "cfExcludedUsers",
                            "users whose visits ALS must not see (cold-start evaluation)", TypeConverters.toListString)
    rank = Param(Params._dummy(), "rank", "ALS rank", TypeConverters.toInt)
    alpha = Param(Params._dummy(), "alpha", "ALS implicit confidence scale", TypeConverters.toFloat)
    method = Param(Params._dummy(), "method", "'auto' (the learned ranker if it beats every single signal on "
                   "validation, else the best signal), 'ranker', or one signal name", TypeConverters.toString)
    halflifeDays = Param(Params._dummy(), "halflifeDays", "popularity: a visit's weight halves every this many days",
                         TypeConverters.toFloat)
    rankerTrees = Param(Params._dummy(), "rankerTrees", "boosted trees of the learned ranker", TypeConverters.toInt)
    rankerDepth = Param(Params._dummy(), "rankerDepth", "depth of each tree of the learned ranker",
                        TypeConverters.toInt)
    rankerQueries = Param(Params._dummy(), "rankerQueries", "validation queries per user (their last training "
                          "trips, each hidden with the trips before it as history) the learned ranker trains on",
                          TypeConverters.toInt)
    priorPhotos = Param(Params._dummy(), "priorPhotos",
                        "photos' worth of its kind's mean that a destination profile is shrunk towards",
                        TypeConverters.toFloat)
    interestWeight = Param(Params._dummy(), "interestWeight",
                           "share of the interest-distribution cosine in content similarity (rest: embedding)",
                           TypeConverters.toFloat)
    descriptionWeight = Param(Params._dummy(), "descriptionWeight",
                              "share of the catalog description in a destination's embedding", TypeConverters.toFloat)
    numSuggestions = Param(Params._dummy(), "numSuggestions", "suggestions per user (transform)", TypeConverters.toInt)

    def __init__(self) -> None:
        super().__init__()
        travel = TravelConfig()
        self._setDefault(labels=[], sceneCount=0, catalogPath="", cfExcludedUsers=[], rank=8, regParam=0.1,
                         alpha=1.0, maxIter=10, method=travel.recommender_method, halflifeDays=travel.halflife_days,
                         rankerTrees=travel.ranker_trees, rankerDepth=travel.ranker_depth,
                         rankerQueries=travel.ranker_queries, priorPhotos=10.0,
                         interestWeight=0.5, descriptionWeight=0.3, seed=travel.seed,
                         numSuggestions=travel.suggestions_per_user)


def recommender_params(travel: TravelConfig) -> dict[str, Any]:
    """The TravelRecommender Params a travel config sets; with a default config these are the estimator's own
    defaults, so the job and the estimator suggest the same."""
    return {"method": travel.recommender_method, "halflifeDays": travel.halflife_days,
            "rankerTrees": travel.ranker_trees, "rankerDepth": travel.ranker_depth,
            "rankerQueries": travel.ranker_queries,
            "numSuggestions": travel.suggestions_per_user, "seed": travel.seed}


class TravelRecommender(Estimator, _RecParams, DefaultParamsReadable, DefaultParamsWritable):
    """Learns to suggest places from visits (user_id, destination_id, trip_id, visited_at) or photos (taken_at; with
    `interest` [and `joint_embedding`] the photo-content signal joins in).

    Constructed without data, like every pyspark.ml stage: the catalog is read at fit time from `catalogPath`.
    Fitting hides each user's last trip (and the one before, ... up to `rankerQueries` trips, each with the trips
    before it as history), computes the signals on the rest, trains the ranker on half those users and keeps it
    only if it beats every single signal on the other half (the booster then refitted on both halves); then
    everything else is refitted on all visits.
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
                             "or `interest_labels` in the travel job's summary.json), or drop the `interest` column "
                             "to learn from visits alone")
        if not 0 <= sc <= len(labels):
            raise InputError(f"TravelRecommender: sceneCount is {sc} but `labels` has {len(labels)} names; "
                             "sceneCount counts the scene classes at the start of `labels`")
        lo, hi = photos.where(F.col("interest").isNotNull()).agg(
            F.min(F.size("interest")), F.max(F.size("interest"))).first()
        if lo is None:
            raise InputError("TravelRecommender: no row has an `interest` vector; pass the travel job's photos, or "
                             "drop the `interest` column to learn from visits alone")
        if lo != len(labels) or hi != len(labels):
            got = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise InputError(f"TravelRecommender: the `interest` vectors have {got} values but `labels` names "
                             f"{len(labels)}; `labels` must name every interest value, in order")

    def _fit(self, rows: DataFrame) -> TravelRecommenderModel:
        g = self.getOrDefault
        require_columns(rows, ["user_id", "destination_id"], "TravelRecommender")
        method = g(self.method)
        if method not in ("auto", RANKER, *SIGNALS):
            raise InputError(f"TravelRecommender: unknown method {method!r}; use 'auto', '{RANKER}' or one of "
                             f"{', '.join(SIGNALS)}")
        photos = rows if "interest" in rows.columns else None
        if photos is not None:
            self._check_interest(photos)
        if not g(self.catalogPath):
            raise InputError("TravelRecommender: set catalogPath to the destinations catalog (a .csv file or the "
                             "travel job's `catalog` Parquet table)")
        catalog = load_catalog(rows.sparkSession, g(self.catalogPath))
        places = places_table(catalog).cache()
        visits = visits_from_rows(rows).cache()
        check_places(visits, places, "TravelRecommender")
        if visits.limit(1).count() == 0:
            raise InputError("TravelRecommender: no visit to learn from (rows need destination_id, trip_id and a time)")
        # A fixed signal has nothing to train or choose: no validation pass.
        choice = RankerChoice(method) if method in SIGNALS else self._choose(photos, visits, places, catalog)
        model = TravelRecommenderModel()
        users, dests = self._profiles(photos, catalog, visits, places)
        model._set_fitted(visits, places, users, dests, self._fit_als(visits, places), choice)
        return self._copyValues(model)

    def _choose(self, photos: DataFrame | None, visits: DataFrame, places: DataFrame, catalog: DataFrame
                ) -> RankerChoice:
        """Validation: each user's last trip hidden (level 0), then the one before (level 1), ... up to
        `rankerQueries` trips, each with the signals computed from the trips before it only; the ranker is trained,
        and the method chosen, on those trips."""
        g = self.getOrDefault
        feats, rels = [], []
        history = visits
        for level in range(max(1, g(self.rankerQueries))):
            vhist, vrel = last_trip_split(history)
            vrel = vrel.where(F.size("relevant") > 0).localCheckpoint()
            if level and vrel.limit(1).count() == 0:
                break  # nobody has that many trips
            vhist = vhist.localCheckpoint()
            vphotos = None if photos is None else photos.join(vhist.select("user_id", "trip_id").distinct(),
                                                              ["user_id", "trip_id"])
            vusers = vrel.select("user_id")
            vfeat = compute_signals(vhist, places, vusers, self._fit_als(vhist, places),
                                    self._content(vphotos, catalog, vusers), g(self.halflifeDays))
            feats.append(vfeat.withColumn("level", F.lit(level)))
            rels.append(vrel.withColumn("level", F.lit(level)))
            history = vhist
        vfeat, vrel = reduce(DataFrame.unionByName, feats), reduce(DataFrame.unionByName, rels)
        return choose_method(vfeat, vrel, 10, g(self.seed), g(self.rankerTrees), g(self.rankerDepth),
                             g(self.method))

    def _fit_als(self, visits: DataFrame, places: DataFrame) -> AlsParts:
        g = self.getOrDefault
        excluded = list(g(self.cfExcludedUsers))
        v = visits.where(~F.col("user_id").isin(excluded)) if excluded else visits
        v = v.groupBy("user_id", "destination_id").agg(F.log1p(F.sum("photos")).alias("rating"))
        uidx = StringIndexer(inputCol="user_id", outputCol="user_idx", handleInvalid="keep").fit(v)
        didx = StringIndexer(inputCol="destination_id", outputCol="dest_idx", handleInvalid="keep").fit(places)
        als = ALS(userCol="user_idx", itemCol="dest_idx", ratingCol="rating", implicitPrefs=True, rank=g(self.rank),
                  regParam=g(self.regParam), alpha=g(self.alpha), maxIter=g(self.maxIter), seed=g(self.seed),
                  coldStartStrategy="nan", nonnegative=True)
        return AlsParts(uidx, didx, als.fit(didx.transform(uidx.transform(v))))

    def _content(self, photos: DataFrame | None, catalog: DataFrame, users: DataFrame) -> DataFrame | None:
        """user_id, destination_id, content for `users` (None without photos)."""
        if photos is None:
            return None
        u, d = self._photo_profiles(photos, catalog)
        return content_scores(u.join(users, "user_id"), d, float(self.getOrDefault(self.interestWeight)))

    def _photo_profiles(self, photos: DataFrame, catalog: DataFrame) -> tuple[DataFrame, DataFrame]:
        g = self.getOrDefault
        if "joint_embedding" not in photos.columns:
            photos = photos.withColumn("joint_embedding", F.lit(None).cast("array<float>"))
        labels, sc = list(g(self.labels)), g(self.sceneCount)
        baseline = mean_interest(photos)
        return (user_profiles(photos, labels, sc, baseline),
                destination_profiles(photos, catalog, labels, sc, g(self.descriptionWeight), baseline,
                                     g(self.priorPhotos)))

    def _profiles(self, photos: DataFrame | None, catalog: DataFrame, visits: DataFrame, places: DataFrame
                  ) -> tuple[DataFrame, DataFrame]:
        """User and destination profiles: from photos (interest, embedding, top labels) or, without photos, from
        visits (counts and the kinds of places visited)."""
        if photos is not None:
            u, d = self._photo_profiles(photos, catalog)
            return u.cache(), d.cache()
        k = visits.join(places.select("destination_id", "kind"), "destination_id")
        u = k.groupBy("user_id").agg(F.count("*").alias("visits"), F.countDistinct("trip_id").alias("trips"),
                                     F.countDistinct("destination_id").alias("destinations"),
                                     F.slice(F.array_distinct(F.collect_list("kind")), 1, 3).alias("top_labels"))
        vis = visits.groupBy("destination_id").agg(F.countDistinct("user_id").alias("visitors"))
        d = places.join(vis, "destination_id", "left").fillna({"visitors": 0}).withColumn(
            "top_labels", F.array(F.col("kind")))
        return u.cache(), d.cache()


def content_scores(users: DataFrame, dests: DataFrame, interest_weight: float) -> DataFrame:
    """user_id, destination_id, content: `interest_weight` x cosine(interest) + the rest x cosine(embedding), each
    side centred on its own mean first (raw means of photo predictions all look alike)."""
    def center(t: DataFrame) -> DataFrame:
        return mean_arrays(t.withColumn("_all", F.lit(1)), "_all",
                           {"interest": "_c_int", "embedding": "_c_emb"}).drop("_all")

    u = users.crossJoin(F.broadcast(center(users))).select(
        "user_id", _minus("interest", "_c_int").alias("u_int"), _minus("embedding", "_c_emb").alias("u_emb"))
    d = dests.crossJoin(F.broadcast(center(dests))).select(
        "destination_id", _minus("interest", "_c_int").alias("d_int"), _minus("embedding", "_c_emb").alias("d_emb"))
    iw = float(interest_weight)
    return u.crossJoin(F.broadcast(d)).select("user_id", "destination_id", F.expr(
        f"{iw} * {cosine_expr('u_int', 'd_int')} + {1 - iw} * {cosine_expr('u_emb', 'd_emb')}").alias("content"))


def _minus(col: str, center: str):
    """Element-wise `col - center` (array columns); `col` unchanged where there is no center."""
    return F.when(F.col(center).isNull() | F.col(col).isNull(), F.col(col)).otherwise(
        F.zip_with(col, center, lambda a, b: a - b))


class TravelRecommenderModel(Model, _RecParams, DataStage):
    """Ranks unvisited places for users with the chosen method and explains what is shown.

    Its data (visits, places, profiles, the two indexers, the ALS model and the ranker's booster with the
    validation comparison) are saved beside its Params by `wanderlens.persistence`, on any Hadoop path."""

    def __init__(self) -> None:
        super().__init__()
        self.visits: DataFrame | None = None
        self.places: DataFrame | None = None
        self.users: DataFrame | None = None
        self.destinations: DataFrame | None = None
        self.als: AlsParts | None = None
        self.choice = RankerChoice("popularity")

    def _set_fitted(self, visits: DataFrame, places: DataFrame, users: DataFrame, destinations: DataFrame,
                    als: AlsParts, choice: RankerChoice) -> TravelRecommenderModel:
        self.visits, self.places, self.users, self.destinations = visits, places, users, destinations
        self.als, self.choice = als, choice
        return self

    def _stage_data(self) -> dict[str, Any]:
        c = self.choice
        return {"visits": self.visits, "places": self.places, "users": self.users, "destinations": self.destinations,
                "user_indexer": self.als.user_indexer, "dest_indexer": self.als.dest_indexer, "als": self.als.model,
                "ranker": {"method": c.method, "booster": c.booster, "methods": list(c.validation),
                           "ndcg": [float(v) for v in c.validation.values()]}}

    def _set_stage_data(self, data: dict[str, Any]) -> None:
        r = data["ranker"]
        choice = RankerChoice(r["method"], bytes(r["booster"] or b""),
                              dict(zip(r.get("methods") or [], r.get("ndcg") or [], strict=True)))
        self._set_fitted(data["visits"], data["places"], data["users"], data["destinations"],
                         AlsParts(data["user_indexer"], data["dest_indexer"], data["als"]), choice)

    def features(self, users: DataFrame | None = None) -> DataFrame:
        """Every (user, unvisited place) with the signals (`wanderlens.travel.signals.SIGNALS`) and anchors.
        `users` (a DataFrame with user_id) may hold users without history: they are ranked by popularity."""
        u = self.users.select("user_id") if users is None else users.select("user_id").distinct()
        content = None
        if "interest" in self.users.columns:
            content = content_scores(self.users.join(u, "user_id"), self.destinations,
                                     float(self.getOrDefault(self.interestWeight)))
        return compute_signals(self.visits, self.places, u, self.als, content, self.getOrDefault(self.halflifeDays))

    def rank_users(self, users: DataFrame | None = None, k: int = 10, method: str | None = None) -> DataFrame:
        """The fast path, no reasons: user_id, rank, destination_id, score for the top k."""
        m = method or self.choice.method
        if m != RANKER and m not in SIGNALS:
            raise InputError(f"unknown ranking method {m!r}; use 'ranker' or one of {', '.join(SIGNALS)}")
        scored = with_score(self.features(users), m, self.choice.booster)
        return top_k(scored, k).select("user_id", "rank", "destination_id", "score")

    def ranked_lists(self, users: DataFrame | None, methods: list[str], k: int = 10) -> DataFrame:
        """user_id, method, ranked (top-k place ids) for several methods in one pass (evaluation)."""
        return ranked_lists(self.features(users), methods, k, self.choice.booster)

    def recommend(self, users: DataFrame | None = None, k: int = 10) -> DataFrame:
        """Suggestions: user_id, rank, destination_id, name, country, kind, score, reason (reasons for the top k
        only)."""
        feats = self.features(users)
        top = top_k(with_score(feats, self.choice.method, self.choice.booster), k)
        names = self.places.select("destination_id", "name", "country")
        anchor_names = self.places.select(F.col("destination_id").alias("_a"), F.col("name").alias("_an"))
        for a in ("covisit_anchor", "sequence_anchor", "geo_anchor"):
            top = top.join(anchor_names.withColumnRenamed("_a", a).withColumnRenamed("_an", a + "_name"), a, "left")
        top = top.join(names, "destination_id", "left")
        top = top.join(self.users.select("user_id", F.col("top_labels").alias("u_labels")), "user_id", "left")
        top = top.join(self.destinations.select("destination_id", F.col("top_labels").alias("d_labels")),
                       "destination_id", "left")
        scenes = list(self.getOrDefault(self.labels))[: self.getOrDefault(self.sceneCount)]
        method, raw = self.choice.method, self.choice.booster
        cols = ["user_id", "rank", "destination_id", "name", "country", "dest_kind", "score"]
        schema = T.StructType([top.schema[c] for c in cols] + [T.StructField("reason", T.StringType())])

        def explain(batches):
            for pdf in batches:
                pdf = pdf.reset_index(drop=True)
                weights = _reason_weights(pdf, method, raw)
                pdf["reason"] = [suggestion_reason(_context(pdf.iloc[i], scenes), weights[i])
                                 for i in range(len(pdf))]
                yield pdf[cols + ["reason"]]

        return top.mapInPandas(explain, schema).withColumnRenamed("dest_kind", "kind").orderBy("user_id", "rank")

    def _transform(self, users: DataFrame) -> DataFrame:
        """Suggestions for the users of `users` (a DataFrame with user_id)."""
        return self.recommend(users, self.getOrDefault(self.numSuggestions))

    def unpersist(self) -> TravelRecommenderModel:
        """Drop the cached tables (a model used once, as in an evaluation loop)."""
        for df in (self.visits, self.places, self.users, self.destinations):
            df.unpersist()
        return self


def _reason_weights(pdf: pd.DataFrame, method: str, raw: bytes) -> list[dict[str, float]]:
    """Per row, how much each signal counts for the reason: the ranker's contributions, or the single signal."""
    if method == RANKER and raw and len(pdf):
        c = contributions(raw, pdf.fillna({s: 0.0 for s in SIGNALS}))
        return [dict(zip(SIGNALS, row, strict=True)) for row in c]
    return [{method: 1.0} for _ in range(len(pdf))]


def _context(row: pd.Series, scenes: list[str]) -> dict[str, Any]:
    def lst(v: Any) -> list[str]:
        return [str(x) for x in v] if v is not None and not isinstance(v, float) else []

    return {"name": row["name"], "kind": row["dest_kind"], "scenes": scenes, "u_labels": lst(row.get("u_labels")),
            "d_labels": lst(row.get("d_labels")), "covisit": row.get("covisit_anchor_name"),
            "sequence": row.get("sequence_anchor_name"), "geo": row.get("geo_anchor_name"),
            "season": row.get("season_name"), "has_history": bool(row.get("has_history"))}


# Labels that are adjectives read better with a noun: "religious sites", "cultural places".
_ADJECTIVE_NOUNS = {"religious": "religious sites", "historic": "historic sites", "historical": "historical sites",
                    "archaeological": "archaeological sites"}
_ADJECTIVE_ENDINGS = ("ous", "al", "ic", "ive", "ful", "ian", "ern", "ish", "ese", "ary", "ing", "ed")


def label_phrase(label: str, scenes: list[str] | None = None) -> str:
    """A label as a traveller would say it after "You photograph": lower case, adjectives with a noun
    ("Religious" -> "religious sites", "Cultural" -> "cultural places"), scene nouns in the plural ("city" ->
    "cities"), other nouns as they are ("water", "boats")."""
    text = str(label).replace("_", " ").strip()
    low = text.lower()
    if low in _ADJECTIVE_NOUNS:
        return _ADJECTIVE_NOUNS[low]
    if low.endswith(_ADJECTIVE_ENDINGS) and " " not in low and low not in ("snow", "people"):
        return low + " places"
    if scenes is not None and label in scenes:
        return plural(low)
    return low


def _phrase(signal: str, ctx: dict[str, Any]) -> str | None:
    name = ctx["name"]
    if signal == "content":
        shared = [x for x in ctx["u_labels"] if x in ctx["d_labels"]][:3]
        if shared:
            has = {1: "has them too", 2: "has both", 3: "has all three"}[len(shared)]
            if len(shared) == 1 and shared[0] not in ctx["scenes"]:
                has = "has it too"
            return f"you photograph {join_words([label_phrase(x, ctx['scenes']) for x in shared])}; {name} {has}"
        return f"{name} looks like your photos"
    if signal == "kind" and ctx["kind"]:
        return f"you often go to {label_phrase(ctx['kind'], [ctx['kind']])}"
    phrases = {
        "covisit": ctx["covisit"] and f"travellers who went to {ctx['covisit']} also went to {name}",
        "sequence": ctx["sequence"] and f"after {ctx['sequence']}, travellers often go to {name} on their next trip",
        "geo_recent": ctx["geo"] and f"{name} is close to {ctx['geo']}, where you went",
        "geo_liked": ctx["geo"] and f"{name} is near places you liked, such as {ctx['geo']}",
        "geo_home": f"{name} is in the part of the world you travel in most",
        "season": ctx["season"] and f"travellers go to {name} in {ctx['season']}, when you like to travel",
        "als": f"travellers with trips like yours went to {name}",
        "popularity": f"{name} is popular with travellers and new to you",
    }
    return phrases.get(signal) or None


def suggestion_reason(ctx: dict[str, Any], weights: dict[str, float], most: int = 2) -> str:
    """Why a place is suggested, from the (up to `most`) signals that added most to its score, in words."""
    if not ctx.get("has_history", True):
        parts = [f"{ctx['name']} is popular with travellers (you have no trips with us yet)"]
    else:
        ranked = sorted((s for s, v in weights.items() if v > 0), key=lambda s: -weights[s])
        parts = [p for p in (_phrase(s, ctx) for s in ranked) if p][:most]
        parts = parts or [f"{ctx['name']} is popular with travellers and new to you"]
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


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
