"""The signals a travel recommender ranks with, each computed with Spark for every (user, candidate place).

From a visit history (`wanderlens.travel.visits`) and the places catalog (kind, coordinates):

| signal | what it measures |
|---|---|
| `popularity` | log(1 + visitors), each visitor's weight halving every `halflife_days` since their visit |
| `als` | MLlib ALS (implicit) score on user x place visits |
| `covisit` | item-to-item co-visitation: cosine of visitor sets with the places the user went to (recency-weighted) |
| `sequence` | first-order trip transitions: P(place on the next trip / a place of the user's last trip) |
| `geo_recent` | closeness to the places of the user's last trip, 1 / (1 + km / 500) |
| `geo_home` | closeness to the user's home region (the centre of their visits), 1 / (1 + km / 1500) |
| `geo_liked` | places near places they went to: sum of 1 / (1 + km / 300) over visited places (recency-weighted) |
| `season` | lift of the place in the calendar seasons the user travels in |
| `kind` | the user's share of visits (recent trips weigh more) to places of the candidate's kind |
| `content` | photo content: cosine of the user's and the place's interest profiles (0 without photos) |

The ranker also reads `sequence_last` (transitions from the last place of the user's last trip alone) and
`km_last` (km from that place; null without coordinates): `LAST_PLACE`, never ranked alone.

Recency: a visit on the user's n-th last trip weighs 0.5^n. Every signal is a plain column, so each can rank alone
(the comparison rows of the evaluation) or feed the learned ranker (`wanderlens.travel.ranker`). Anchors for the
reasons come along: `covisit_anchor`, `sequence_anchor`, `geo_anchor` (visited place ids), `season_name`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml.feature import StringIndexerModel
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from wanderlens.travel.trips import haversine_km
from wanderlens.travel.visits import with_trip_order

SIGNALS: tuple[str, ...] = ("popularity", "als", "covisit", "sequence", "geo_recent", "geo_home", "geo_liked",
                            "season", "kind", "content")
SEASONS: tuple[str, ...] = ("winter", "spring", "summer", "autumn")
# What the learned ranker reads besides SIGNALS (never ranked alone): the trip-to-trip transitions from the last
# place of the user's last trip only, and the km from that place (null without coordinates).
LAST_PLACE: tuple[str, ...] = ("sequence_last", "km_last")
FEATURES: tuple[str, ...] = SIGNALS + LAST_PLACE


@dataclass
class AlsParts:
    """A fitted ALS model with its user and place indexers."""

    user_indexer: StringIndexerModel
    dest_indexer: StringIndexerModel
    model: ALSModel


def season_index(col):
    """0 winter (Dec-Feb), 1 spring, 2 summer, 3 autumn: calendar seasons of travel."""
    return F.floor((F.month(col) % 12) / 3)


def places_table(catalog: DataFrame) -> DataFrame:
    """destination_id, name, country, kind, latitude, longitude (doubles; null when the catalog has none)."""
    cols = [F.col("destination_id"), F.col("name")]
    for c in ("country", "kind"):
        cols.append(F.col(c) if c in catalog.columns else F.lit(None).cast("string").alias(c))
    for c in ("latitude", "longitude"):
        cols.append(F.col(c).cast("double").alias(c) if c in catalog.columns else F.lit(None).cast("double").alias(c))
    return catalog.select(*cols)


def _weighted(history: DataFrame) -> DataFrame:
    """Visits with `trips_ago` and `w` = 0.5^trips_ago."""
    return with_trip_order(history).withColumn("w", F.pow(F.lit(0.5), F.col("trips_ago")))


def popularity(history: DataFrame, places: DataFrame, halflife_days: float) -> DataFrame:
    """destination_id, popularity: log(1 + time-decayed visitors) (0 for places nobody visited)."""
    now = history.agg(F.max("visited_at")).first()[0]
    last = history.groupBy("user_id", "destination_id").agg(F.max("visited_at").alias("t"))
    if now is None:
        return places.select("destination_id", F.lit(0.0).alias("popularity"))
    age = (F.lit(now).cast("long") - F.col("t").cast("long")) / 86400.0
    pop = last.groupBy("destination_id").agg(F.sum(F.pow(F.lit(0.5), age / halflife_days)).alias("_p"))
    return places.select("destination_id").join(pop, "destination_id", "left").select(
        "destination_id", F.log1p(F.coalesce("_p", F.lit(0.0))).alias("popularity"))


def covisitation(h: DataFrame) -> DataFrame:
    """user_id, destination_id, covisit, covisit_anchor from weighted visits `h`."""
    ud = h.select("user_id", "destination_id").distinct()
    n = ud.groupBy("destination_id").agg(F.count("*").alias("n"))
    pairs = (ud.alias("a").join(ud.alias("b"), "user_id").where(F.col("a.destination_id") != F.col("b.destination_id"))
             .groupBy(F.col("a.destination_id").alias("anchor"), F.col("b.destination_id").alias("destination_id"))
             .agg(F.count("*").alias("n_ab")))
    sim = (pairs.join(n.withColumnRenamed("destination_id", "anchor").withColumnRenamed("n", "n_a"), "anchor")
           .join(n.withColumnRenamed("n", "n_b"), "destination_id")
           .select("anchor", "destination_id", (F.col("n_ab") / F.sqrt(F.col("n_a") * F.col("n_b"))).alias("sim")))
    uw = h.groupBy("user_id", F.col("destination_id").alias("anchor")).agg(F.max("w").alias("w"))
    s = uw.join(sim, "anchor").withColumn("_v", F.col("w") * F.col("sim"))
    return s.groupBy("user_id", "destination_id").agg(F.sum("_v").alias("covisit"),
                                                      F.max_by("anchor", "_v").alias("covisit_anchor"))


def transitions(h: DataFrame) -> DataFrame:
    """user_id, destination_id, sequence, sequence_anchor: first-order trip-to-trip transitions (how often travellers
    who were at a place on one trip go to another on their next trip), from the places of the user's last trip."""
    tp = h.select("user_id", "trips_ago", "destination_id").distinct()
    prev = tp.select("user_id", (F.col("trips_ago") - 1).alias("trips_ago"), F.col("destination_id").alias("anchor"))
    cnt = prev.join(tp, ["user_id", "trips_ago"]).groupBy("anchor", "destination_id").agg(
        F.countDistinct("user_id").alias("c"))
    tot = cnt.groupBy("anchor").agg(F.sum("c").alias("t"))
    p = cnt.join(tot, "anchor").select("anchor", "destination_id", (F.col("c") / F.col("t")).alias("p"))
    last = tp.where("trips_ago = 0").select("user_id", F.col("destination_id").alias("anchor"))
    n_last = last.groupBy("user_id").agg(F.count("*").alias("_n"))
    s = last.join(p, "anchor").join(n_last, "user_id").withColumn("_v", F.col("p") / F.col("_n"))
    return s.groupBy("user_id", "destination_id").agg(F.sum("_v").alias("sequence"),
                                                      F.max_by("anchor", "_v").alias("sequence_anchor"))


def last_place(h: DataFrame, places: DataFrame) -> DataFrame:
    """user_id, destination_id, sequence_last, km_last: where travellers go on their next trip after the last place
    of a trip (the place visited last), from the last place of the user's last trip, and how far the candidate is
    from it. A trip's last place is where the next one most often starts from: sharper than `sequence`, which
    averages over every place of the last trip."""
    w = Window.partitionBy("user_id", "trips_ago").orderBy(F.desc("visited_at"), F.desc("destination_id"))
    lastp = h.withColumn("_r", F.row_number().over(w)).where("_r = 1").select(
        "user_id", "trips_ago", F.col("destination_id").alias("anchor"))
    tp = h.select("user_id", "trips_ago", "destination_id").distinct()
    prev = lastp.select("user_id", (F.col("trips_ago") - 1).alias("trips_ago"), "anchor")
    cnt = prev.join(tp, ["user_id", "trips_ago"]).groupBy("anchor", "destination_id").agg(
        F.countDistinct("user_id").alias("c"))
    p = cnt.join(cnt.groupBy("anchor").agg(F.sum("c").alias("t")), "anchor").select(
        "anchor", "destination_id", (F.col("c") / F.col("t")).alias("sequence_last"))
    last = lastp.where("trips_ago = 0").select("user_id", "anchor")
    seq = last.join(p, "anchor").select("user_id", "destination_id", "sequence_last")
    a = places.select(F.col("destination_id").alias("anchor"), F.col("latitude").alias("a_lat"),
                      F.col("longitude").alias("a_lon"))
    c = places.select("destination_id", F.col("latitude").alias("c_lat"), F.col("longitude").alias("c_lon"))
    dist = last.join(a, "anchor").crossJoin(F.broadcast(c)).select(
        "user_id", "destination_id", haversine_km("a_lat", "a_lon", "c_lat", "c_lon").alias("km_last"))
    return dist.join(seq, ["user_id", "destination_id"], "full")


def geography(h: DataFrame, places: DataFrame) -> DataFrame:
    """user_id, destination_id, geo_recent, geo_liked, geo_home, geo_anchor (the nearest place the user went to)."""
    coords = places.where(F.col("latitude").isNotNull() & F.col("longitude").isNotNull()).select(
        "destination_id", "latitude", "longitude")
    uh = h.groupBy("user_id", "destination_id").agg(F.max("w").alias("w"), F.min("trips_ago").alias("ago"),
                                                    F.sum("photos").alias("photos"))
    uh = uh.join(coords.select(F.col("destination_id"), F.col("latitude").alias("a_lat"),
                               F.col("longitude").alias("a_lon")), "destination_id").withColumnRenamed(
        "destination_id", "anchor")
    c = coords.select("destination_id", F.col("latitude").alias("c_lat"), F.col("longitude").alias("c_lon"))
    d = uh.crossJoin(F.broadcast(c)).withColumn("_km", haversine_km("a_lat", "a_lon", "c_lat", "c_lon"))
    geo = d.groupBy("user_id", "destination_id").agg(
        F.max(F.when(F.col("ago") == 0, 1.0 / (1.0 + F.col("_km") / 500.0))).alias("geo_recent"),
        F.sum(F.col("w") / (1.0 + F.col("_km") / 300.0)).alias("geo_liked"),
        F.min_by("anchor", "_km").alias("geo_anchor"))
    # Home region: the centre (on the sphere) of the user's visits, weighted by how many photos/visits there.
    lat, lon = F.radians("a_lat"), F.radians("a_lon")
    home = uh.groupBy("user_id").agg(F.sum(F.col("photos") * F.cos(lat) * F.cos(lon)).alias("x"),
                                     F.sum(F.col("photos") * F.cos(lat) * F.sin(lon)).alias("y"),
                                     F.sum(F.col("photos") * F.sin(lat)).alias("z"))
    home = home.select("user_id", F.degrees(F.atan2("z", F.sqrt(F.col("x") ** 2 + F.col("y") ** 2))).alias("h_lat"),
                       F.degrees(F.atan2("y", "x")).alias("h_lon"))
    home = home.crossJoin(F.broadcast(c)).select(
        "user_id", "destination_id",
        (1.0 / (1.0 + haversine_km("h_lat", "h_lon", "c_lat", "c_lon") / 1500.0)).alias("geo_home"))
    return geo.join(home, ["user_id", "destination_id"], "full")


def seasons(h: DataFrame, places: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(per user: user_id, season_name and the shares `_q0.._q3` of their (recency-weighted) visits per season;
    per place: destination_id and its season lifts `_l0.._l3`, smoothed)."""
    s = h.withColumn("_s", season_index("visited_at"))
    user = s.groupBy("user_id").agg(*[(F.sum(F.when(F.col("_s") == i, F.col("w")).otherwise(0.0)) / F.sum("w"))
                                      .alias(f"_q{i}") for i in range(4)])
    best = F.greatest(*[F.col(f"_q{i}") for i in range(4)])
    name = F.coalesce(*[F.when(F.col(f"_q{i}") == best, F.lit(SEASONS[i])) for i in range(4)])
    user = user.withColumn("season_name", name)
    glob = s.agg(*[F.avg((F.col("_s") == i).cast("double")).alias(f"_g{i}") for i in range(4)])
    place = s.groupBy("destination_id").agg(*[F.sum((F.col("_s") == i).cast("double")).alias(f"_c{i}")
                                              for i in range(4)], F.count("*").alias("_n"))
    place = places.select("destination_id").join(place, "destination_id", "left").crossJoin(F.broadcast(glob))
    lifts = [((F.coalesce(F.col(f"_c{i}"), F.lit(0.0)) + 4 * F.col(f"_g{i}"))
              / (F.coalesce(F.col("_n"), F.lit(0)) + 4) / F.greatest(F.col(f"_g{i}"), F.lit(1e-6))).alias(f"_l{i}")
             for i in range(4)]
    return user, place.select("destination_id", *lifts)


def kinds(h: DataFrame, places: DataFrame) -> DataFrame:
    """user_id, kind, kind_share: the share of the user's (recency-weighted) visits to places of each kind."""
    k = h.join(places.select("destination_id", "kind"), "destination_id").where(F.col("kind").isNotNull())
    per = k.groupBy("user_id", "kind").agg(F.sum("w").alias("_w"))
    tot = k.groupBy("user_id").agg(F.sum("w").alias("_t"))
    return per.join(tot, "user_id").select("user_id", "kind", (F.col("_w") / F.col("_t")).alias("kind_share"))


def als_scores(cands: DataFrame, als: AlsParts | None) -> DataFrame:
    """Adds `als` (0 where ALS has no opinion: users or places it never saw)."""
    if als is None:
        return cands.withColumn("als", F.lit(0.0))
    idx = als.dest_indexer.transform(als.user_indexer.transform(cands))
    out = als.model.transform(idx).withColumnRenamed("prediction", "als").drop("user_idx", "dest_idx")
    return out.withColumn("als", F.when(F.isnan("als"), 0.0).otherwise(F.coalesce(F.col("als").cast("double"),
                                                                                    F.lit(0.0))))


def compute_signals(history: DataFrame, places: DataFrame, users: DataFrame, als: AlsParts | None = None,
                    content: DataFrame | None = None, halflife_days: float = 365.0) -> DataFrame:
    """Every (user of `users`, place the user has not visited) with one column per SIGNALS, `has_history`, the
    candidate's `kind` and the reasons' anchors. `content` (user_id, destination_id, content) is optional (0
    without). Users without history get zeros everywhere but popularity (the documented fallback ranks them by it)."""
    # Materialised once with its lineage cut: every signal below reads it (small: one row per visit).
    h = _weighted(history).localCheckpoint()
    history = h.select(*history.columns)
    places = places.localCheckpoint()
    visited = history.select("user_id", "destination_id").distinct()
    known = history.select("user_id").distinct().withColumn("has_history", F.lit(True))
    cands = (users.select("user_id").distinct().crossJoin(F.broadcast(places.select("destination_id", "kind")))
             .join(visited, ["user_id", "destination_id"], "left_anti"))
    su, sp = seasons(h, places)
    season = sum(F.col(f"_q{i}") * F.col(f"_l{i}") for i in range(4))
    out = (cands.join(known, "user_id", "left")
           .join(F.broadcast(popularity(history, places, halflife_days)), "destination_id", "left")
           .join(covisitation(h), ["user_id", "destination_id"], "left")
           .join(transitions(h), ["user_id", "destination_id"], "left")
           .join(geography(h, places), ["user_id", "destination_id"], "left")
           .join(last_place(h, places), ["user_id", "destination_id"], "left")
           .join(su, "user_id", "left").join(F.broadcast(sp), "destination_id", "left")
           .withColumn("season", season).drop(*[f"_q{i}" for i in range(4)], *[f"_l{i}" for i in range(4)])
           .join(kinds(h, places), ["user_id", "kind"], "left").withColumnRenamed("kind_share", "kind_signal"))
    if content is not None:
        out = out.join(content.select("user_id", "destination_id", "content"), ["user_id", "destination_id"], "left")
    else:
        out = out.withColumn("content", F.lit(0.0))
    out = als_scores(out, als).withColumnRenamed("kind", "place_kind").withColumnRenamed("kind_signal", "kind")
    fills = {s: 0.0 for s in (*SIGNALS, "sequence_last")}
    return out.fillna(fills).fillna({"has_history": False}).withColumnRenamed("place_kind", "dest_kind")
