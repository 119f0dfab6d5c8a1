"""User and destination profiles: what a traveller photographs and what a place looks like, in one space.

A profile holds the mean predicted interest distribution (scene and attribute probabilities), the mean photo
embedding in the text-image joint space, the top labels (for reasons in words) and, for users, travel style and
favourite season. Destinations without photos fall back on their catalog description embedded in the same space.
"""

from __future__ import annotations

from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.stat import Summarizer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.travel.describe import TIME_ATTRIBUTES
from wanderlens.travel.trips import require_columns


def mean_arrays(df: DataFrame, key: str, cols: dict[str, str]) -> DataFrame:
    """Per `key`, the element-wise mean of array columns ({input: output}); rows with a null array are skipped.

    Each mean is its own aggregation (MLlib's Summarizer cannot share a plan with DISTINCT aggregates or see nulls).
    """
    out = None
    for col, name in cols.items():
        typ = "float32" if "float" in df.schema[col].dataType.simpleString() else "float64"
        m = df.where(F.col(col).isNotNull()).groupBy(key).agg(
            vector_to_array(Summarizer.mean(array_to_vector(F.col(col))), typ).alias(name))
        out = m if out is None else out.join(m, key, "full")
    return out


def top_labels_expr(interest_col: str, labels: list[str], n_scene: int, scene_count: int, n_attr: int = 2,
                    min_attr: float = 0.2, baseline: list[float] | None = None, lift: float = 1.15):
    """SQL expression: the `n_scene` likeliest scene labels, then up to `n_attr` attributes that stand out: at least
    `min_attr` and `lift` times their mean over all photos (`baseline`), most distinctive first."""
    names = "array(" + ",".join("'" + x.replace("'", "") + "'" for x in labels) + ")"
    base = baseline if baseline is not None and len(baseline) == len(labels) else [0.5] * len(labels)
    base_sql = "array(" + ",".join(f"{max(float(b), 1e-6)}D" for b in base) + ")"
    idx = f"sequence(0, {len(labels) - 1})"
    pairs = (f"transform({idx}, i -> struct({interest_col}[i] / {base_sql}[i] as r, {interest_col}[i] as p, "
             f"{names}[i] as l, i as i))")
    time_attrs = "array(" + ",".join(f"'{a}'" for a in TIME_ATTRIBUTES) + ")"
    scenes = (f"slice(transform(reverse(array_sort(transform(filter({pairs}, x -> x.i < {scene_count}), "
              f"x -> struct(x.p as p, x.l as l)))), x -> x.l), 1, {n_scene})")
    attrs = (f"slice(transform(reverse(array_sort(filter({pairs}, x -> x.i >= {scene_count} and x.p >= {min_attr} "
             f"and x.r >= {lift} and not array_contains({time_attrs}, x.l)))), x -> x.l), 1, {n_attr})")
    return F.expr(f"array_distinct(concat({scenes}, {attrs}))")


def mean_interest(photos: DataFrame) -> list[float] | None:
    """The mean interest vector over all photos (one small row to the driver), the baseline for 'stands out'."""
    row = photos.where(F.col("interest").isNotNull()).select(
        vector_to_array(Summarizer.mean(array_to_vector(F.col("interest")))).alias("m")).first()
    return list(row["m"]) if row is not None and row["m"] is not None else None


def _season(month, latitude):
    south = F.coalesce(latitude, F.lit(45.0)) < 0
    m = F.when(south, ((month + 5) % 12) + 1).otherwise(month)
    return (F.when(m.isin(12, 1, 2), "winter").when(m.isin(3, 4, 5), "spring")
            .when(m.isin(6, 7, 8), "summer").otherwise("autumn"))


def user_profiles(photos: DataFrame, labels: list[str], scene_count: int,
                  baseline: list[float] | None = None) -> DataFrame:
    """One row per user: photos, trips, mean `interest` and `embedding`, `top_labels`, `style`, `season`.

    `photos` needs user_id, interest (array<double> over `labels`, scene classes first), joint_embedding; trip_id,
    taken_at, latitude and destination_id are used when present.
    """
    require_columns(photos, ["user_id", "interest", "joint_embedding"], "user_profiles")
    has = set(photos.columns)
    aggs = [
        F.count("*").alias("photos"),
        (F.countDistinct("trip_id") if "trip_id" in has else F.lit(0)).alias("trips"),
        (F.countDistinct("destination_id") if "destination_id" in has else F.lit(0)).alias("destinations"),
    ]
    if "taken_at" in has:
        aggs.append(F.countDistinct(F.to_date("taken_at")).alias("photo_days"))
        season = _season(F.month("taken_at"), F.col("latitude") if "latitude" in has else F.lit(None))
        seasons = photos.where(F.col("taken_at").isNotNull()).groupBy("user_id", season.alias("season")).count()
        top_season = (seasons.groupBy("user_id")
                      .agg(F.max_by("season", F.struct("count", "season")).alias("season")))
    else:
        aggs.append(F.lit(0).alias("photo_days"))
        top_season = None
    prof = photos.groupBy("user_id").agg(*aggs).join(
        mean_arrays(photos, "user_id", {"interest": "interest", "joint_embedding": "embedding"}), "user_id", "left")
    if top_season is not None:
        prof = prof.join(top_season, "user_id", "left")
    else:
        prof = prof.withColumn("season", F.lit(None).cast("string"))
    days_per_trip = F.col("photo_days") / F.greatest(F.col("trips"), F.lit(1))
    prof = prof.withColumn(
        "style",
        F.when(F.col("trips") == 0, F.lit("unknown"))
        .when(F.col("destinations") >= F.col("trips") * 2, F.lit("explorer: several places per trip"))
        .when(days_per_trip >= 6, F.lit("slow traveller: long stays"))
        .when(days_per_trip <= 3, F.lit("weekender: short trips"))
        .otherwise(F.lit("classic: one place per trip, about a week")),
    )
    return prof.withColumn("top_labels", top_labels_expr("interest", labels, 2, scene_count, baseline=baseline))


def destination_profiles(photos: DataFrame, catalog: DataFrame, labels: list[str], scene_count: int,
                         description_weight: float = 0.3, baseline: list[float] | None = None,
                         prior_photos: float = 10.0) -> DataFrame:
    """One row per catalog destination: name, kind, mean `interest`, `embedding` (photos blended with the
    description), `top_labels`, `photos` (count), `visitors` (distinct users).

    A destination's photo means are shrunk towards the mean of all photos taken at destinations of the same kind, as
    if it had `prior_photos` more photos like those: a place photographed by one traveller is not described by that
    traveller's photos alone, and a place nobody photographed yet gets a profile of the same nature as the others
    (its kind's photos) instead of a different one. Kinds nobody photographed fall back on a one-hot of the kind.
    `catalog` needs destination_id and name; `description_embedding` (array<float>, joint space) and `kind` are
    used when present.
    """
    require_columns(catalog, ["destination_id", "name"], "destination_profiles")
    placed = photos.where(F.col("destination_id").isNotNull())
    agg = placed.groupBy("destination_id").agg(
        F.count("*").alias("photos"), F.countDistinct("user_id").alias("visitors")).join(
        mean_arrays(placed, "destination_id", {"interest": "_interest", "joint_embedding": "_emb"}),
        "destination_id", "left")
    cat_cols = [F.col("destination_id"), F.col("name")]
    for c in ("country", "kind"):
        cat_cols.append(F.col(c) if c in catalog.columns else F.lit(None).cast("string").alias(c))
    cat_cols.append(F.col("description_embedding") if "description_embedding" in catalog.columns
                    else F.lit(None).cast("array<float>").alias("description_embedding"))
    d = catalog.select(*cat_cols).join(agg, "destination_id", "left")
    d = d.withColumn("photos", F.coalesce("photos", F.lit(0))).withColumn("visitors", F.coalesce("visitors", F.lit(0)))
    # The prior of each kind: the mean over every photo taken at a destination of that kind.
    kinds = d.select("destination_id", "kind").where(F.col("kind").isNotNull())
    prior = mean_arrays(placed.join(kinds, "destination_id"), "kind",
                        {"interest": "_kind_interest", "joint_embedding": "_kind_emb"})
    d = d.join(prior, "kind", "left")
    scene_names = labels[:scene_count]
    kind_onehot = F.array(*[F.when(F.col("kind") == s, 1.0).otherwise(0.0) for s in scene_names],
                          *[F.lit(0.0) for _ in labels[scene_count:]])
    m = float(prior_photos)
    d = d.withColumn("interest", _shrink("_interest", F.coalesce(F.col("_kind_interest"), kind_onehot), m,
                                             "array<double>"))
    d = d.withColumn("_emb", _shrink("_emb", F.col("_kind_emb"), m, "array<float>"))
    w = float(description_weight)
    blended = F.expr(
        f"CASE WHEN _emb IS NULL THEN description_embedding "
        f"WHEN description_embedding IS NULL THEN _emb "
        f"ELSE zip_with(_emb, description_embedding, (a, b) -> cast({1 - w} * a + {w} * b as float)) END"
    )
    d = d.withColumn("embedding", blended.cast("array<float>")).drop("_interest", "_emb", "_kind_interest", "_kind_emb",
                                                "description_embedding")
    d = d.withColumn("kind", F.coalesce(F.col("kind"), F.element_at(top_labels_expr("interest", labels, 1,
                                                                                     scene_count), 1)))
    return d.withColumn("top_labels", top_labels_expr("interest", labels, 2, scene_count, n_attr=3,
                                                      baseline=baseline))


def _shrink(own: str, prior, prior_photos: float, dtype: str):
    """(photos * own + prior_photos * prior) / (photos + prior_photos), element-wise, as `dtype`; `own` alone
    without a prior, `prior` alone without photos."""
    own_c = F.col(own)
    mixed = F.zip_with(own_c, prior, lambda a, b: (F.col("photos") * a + prior_photos * b)
                       / (F.col("photos") + prior_photos))
    return (F.when(own_c.isNull(), prior).when(prior.isNull() | F.lit(prior_photos <= 0), own_c)
            .otherwise(mixed)).cast(dtype)


def cosine_expr(a: str, b: str) -> str:
    """SQL for the cosine of two equal-length numeric arrays (0 when either is null or zero)."""
    dot = f"aggregate(zip_with({a}, {b}, (x, y) -> cast(x as double) * y), 0D, (s, v) -> s + v)"
    na = f"sqrt(aggregate({a}, 0D, (s, v) -> s + cast(v as double) * v))"
    nb = f"sqrt(aggregate({b}, 0D, (s, v) -> s + cast(v as double) * v))"
    return f"coalesce(({dot}) / nullif({na} * {nb}, 0D), 0D)"

