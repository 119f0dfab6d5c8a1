"""Trips: a user's photos cut into trips where the time gap or the distance between consecutive photos is large.

`TripSegmenter` adds a `trip_id` column (a Spark ML Transformer, so it sits in a Pipeline); `summarize_trips`
turns the segmented photos into one row per trip with a sentence such as "Four days in Paris and Lyon, France:
mostly cities, sunsets on two evenings." Places are "City, Country" names (the catalog's, the importer's place
columns, or the offline gazetteer's); a burst of near-identical shots counts once (`burst_representative`), and
days are counted on the photos' local clock when the table has `local_time` (as imported photos do).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.config import TravelConfig
from wanderlens.errors import InputError

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance in km between two (lat, lon) Column pairs (null when a coordinate is null)."""
    rl1, rl2 = F.radians(lat1), F.radians(lat2)
    dlat = rl2 - rl1
    dlon = F.radians(lon2) - F.radians(lon1)
    a = F.sin(dlat / 2) ** 2 + F.cos(rl1) * F.cos(rl2) * F.sin(dlon / 2) ** 2
    root = F.sqrt(a)
    # Not F.least: it skips nulls, and a missing coordinate must give a null distance, not half the globe.
    return 2 * EARTH_RADIUS_KM * F.asin(F.when(root > 1.0, F.lit(1.0)).otherwise(root))


def require_columns(df: DataFrame, columns: list[str], what: str) -> None:
    """Raise an InputError naming the missing columns and the stage that needs them."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(
            f"{what} needs column(s) {', '.join(missing)}; the table has {', '.join(df.columns)}. "
            "Pass a photos/features table as described in docs/architecture.md."
        )


class TripSegmenter(Transformer, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Adds `trip_id` (`<user>/t<n>`): a new trip starts after a gap longer than maxGapHours or a jump of more than
    maxDistanceKm between consecutive photos of one user. Photos without a time get a null trip.

    Defaults of maxGapHours and maxDistanceKm come from `TravelConfig`."""

    userCol = Param(Params._dummy(), "userCol", "user id column", TypeConverters.toString)
    timeCol = Param(Params._dummy(), "timeCol", "timestamp column", TypeConverters.toString)
    latCol = Param(Params._dummy(), "latCol", "latitude column", TypeConverters.toString)
    lonCol = Param(Params._dummy(), "lonCol", "longitude column", TypeConverters.toString)
    maxGapHours = Param(Params._dummy(), "maxGapHours", "largest gap (hours) inside one trip", TypeConverters.toFloat)
    maxDistanceKm = Param(
        Params._dummy(), "maxDistanceKm", "largest jump (km) between consecutive photos of one trip",
        TypeConverters.toFloat,
    )

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        travel = TravelConfig()
        self._setDefault(userCol="user_id", timeCol="taken_at", latCol="latitude", lonCol="longitude",
                         outputCol="trip_id", maxGapHours=travel.max_gap_hours,
                         maxDistanceKm=travel.max_distance_km)
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> TripSegmenter:
        """Set any of the Params by name."""
        return self._set(**self._input_kwargs)

    def _transform(self, df: DataFrame) -> DataFrame:
        g = self.getOrDefault
        user, ts, lat, lon, out = g(self.userCol), g(self.timeCol), g(self.latCol), g(self.lonCol), g(self.outputCol)
        require_columns(df, [user, ts], "TripSegmenter")
        has_geo = lat in df.columns and lon in df.columns
        t = F.col(ts).cast("timestamp")
        w = Window.partitionBy(user).orderBy(t, *( [F.col("photo_id")] if "photo_id" in df.columns else []))
        gap_h = (F.unix_timestamp(t) - F.unix_timestamp(F.lag(t).over(w))) / 3600.0
        new_trip = F.lag(t).over(w).isNull() | (gap_h > g(self.maxGapHours))
        if has_geo:
            # Carry the last known position forward so a photo without GPS does not break a trip.
            prev_lat = F.last(F.col(lat), ignorenulls=True).over(w.rowsBetween(Window.unboundedPreceding, -1))
            prev_lon = F.last(F.col(lon), ignorenulls=True).over(w.rowsBetween(Window.unboundedPreceding, -1))
            dist = haversine_km(prev_lat, prev_lon, F.col(lat), F.col(lon))
            new_trip = new_trip | F.coalesce(dist > g(self.maxDistanceKm), F.lit(False))
        timed = df.where(t.isNotNull()).withColumn("_new_trip", new_trip.cast("int"))
        timed = timed.withColumn(
            "_trip_no", F.sum("_new_trip").over(w.rowsBetween(Window.unboundedPreceding, Window.currentRow))
        )
        timed = timed.withColumn(out, F.concat(F.col(user).cast("string"), F.lit("/t"), F.col("_trip_no")))
        timed = timed.drop("_new_trip", "_trip_no")
        untimed = df.where(t.isNull()).withColumn(out, F.lit(None).cast("string"))
        return timed.unionByName(untimed)


_NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
            "twelve"]
_PLURALS = {"city": "cities", "countryside": "countryside", "snow": "snowy landscapes", "desert": "deserts",
            "beach": "beaches", "people": "people", "night": "nights", "old town": "old towns"}


def number_word(n: int, capital: bool = False) -> str:
    """`3` -> "three" (words up to twelve, digits above)."""
    word = _NUMBERS[n] if 0 <= n < len(_NUMBERS) else str(n)
    return word[:1].upper() + word[1:] if capital else word


def plural(label: str) -> str:
    """Plural of a scene/attribute label as a traveller would say it."""
    label = label.replace("_", " ")
    if label in _PLURALS:
        return _PLURALS[label]
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    if label.endswith("y") and label[-2:-1] not in "aeiou":
        return label[:-1] + "ies"
    return label + "s"


def join_words(words: list[str]) -> str:
    """["a", "b", "c"] -> "a, b and c"."""
    words = [w for w in words if w]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


def place_phrase(places: list[str], most: int = 3) -> str:
    """["Paris, France", "Lyon, France", "Rome, Italy"] -> "Paris and Lyon, France and Rome, Italy": places of
    one country in a row share its name; more than `most` places end with "and elsewhere"."""
    places = [p for p in places if p]
    groups: list[tuple[str, list[str]]] = []
    for p in places[:most]:
        name, _, country = p.rpartition(", ") if ", " in p else (p, "", "")
        if groups and country and groups[-1][0] == country:
            groups[-1][1].append(name)
        else:
            groups.append((country, [name]))
    parts = [join_words(names) + (f", {country}" if country else "") for country, names in groups]
    text = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1] if parts else ""
    return text + (" and elsewhere" if len(places) > most else "")


def trip_sentence(days: int, places: list[str], scenes: list[str], sunset_evenings: int) -> str:
    """One sentence for a trip: its length, places (grouped by country), dominant scenes and sunset evenings."""
    head = f"{number_word(days, capital=True)} day{'s' if days != 1 else ''}"
    places = [p for p in places if p]
    if places:
        head += " in " + place_phrase(places)
    counts = Counter(s for s in scenes if s)
    parts = []
    if counts:
        total = sum(counts.values())
        top = [label for label, c in counts.most_common(2) if c / total >= 0.2]
        lead = "mostly " if counts.most_common(1)[0][1] / total >= 0.5 else ""
        parts.append(lead + join_words([plural(x) for x in top]))
    if sunset_evenings > 0:
        parts.append(f"sunsets on {number_word(sunset_evenings)} evening{'s' if sunset_evenings != 1 else ''}")
    return head + (": " + ", ".join(parts) if parts else "") + "."


_trip_sentence_udf = F.udf(trip_sentence, T.StringType())


def burst_representative(df: DataFrame) -> Column:
    """True for the photos that count: one per burst of near-identical shots (`burst_representative`, written by
    `wanderlens import-photos` and passed through as "true"/"false"), every photo when the column is absent."""
    if "burst_representative" not in df.columns:
        return F.lit(True)
    return F.coalesce(F.lower(F.col("burst_representative").cast("string")) != F.lit("false"), F.lit(True))


def summarize_trips(df: DataFrame, scene_col: str = "scene_label", place_col: str = "place",
                    sunset_col: str = "is_sunset", trip_col: str = "trip_id") -> DataFrame:
    """One row per trip: user, start/end, days, photo count, places, scene counts and a summary sentence.

    `scene_col` holds the (confidently) predicted scene name or null, `place_col` the place name ("City, Country")
    or null, `sunset_col` a boolean saying the photo shows a sunset (predicted); missing columns are treated as
    unknown. With `burst_representative` (imported photos) a burst counts as one photo; with `local_time` the
    days are the photos' local calendar days.
    """
    require_columns(df, ["user_id", "taken_at", trip_col], "summarize_trips")
    cols = {
        scene_col: F.col(scene_col) if scene_col in df.columns else F.lit(None).cast("string"),
        place_col: F.col(place_col) if place_col in df.columns else F.lit(None).cast("string"),
        sunset_col: F.col(sunset_col) if sunset_col in df.columns else F.lit(False),
    }
    rep = burst_representative(df)
    local = F.coalesce(F.col("local_time").cast("timestamp"), F.col("taken_at").cast("timestamp")) \
        if "local_time" in df.columns else F.col("taken_at").cast("timestamp")
    d = df.where(F.col(trip_col).isNotNull() & rep).select(
        "user_id", trip_col, F.col("taken_at").cast("timestamp").alias("taken_at"), local.alias("_local"),
        *( [F.col("destination_id")] if "destination_id" in df.columns else [F.lit(None).cast("string")
                                                                              .alias("destination_id")]),
        cols[scene_col].alias("_scene"), cols[place_col].alias("_place"), cols[sunset_col].alias("_sunset"),
    )
    # Places in the order first visited.
    first_seen = d.groupBy(trip_col, "_place").agg(F.min("taken_at").alias("_first"))
    places = (first_seen.where(F.col("_place").isNotNull())
              .groupBy(trip_col).agg(F.sort_array(F.collect_list(F.struct("_first", "_place"))).alias("_p"))
              .select(trip_col, F.col("_p._place").alias("places")))
    agg = d.groupBy("user_id", trip_col).agg(
        F.min("taken_at").alias("start"), F.max("taken_at").alias("end"), F.count("*").alias("photos"),
        F.collect_list("_scene").alias("scenes"),
        F.array_sort(F.collect_set("destination_id")).alias("destination_ids"),
        F.countDistinct(F.when(F.col("_sunset"), F.to_date("_local"))).alias("sunset_evenings"),
        F.min("_local").alias("_lstart"), F.max("_local").alias("_lend"),
    )
    agg = agg.withColumn("days", (F.datediff(F.to_date("_lend"), F.to_date("_lstart")) + 1).cast("int")) \
        .drop("_lstart", "_lend")
    out = agg.join(places, trip_col, "left").withColumn(
        "places", F.coalesce(F.col("places"), F.array().cast("array<string>"))
    )
    out = out.withColumn("summary", _trip_sentence_udf("days", "places", "scenes", "sunset_evenings"))
    scene_counts = F.map_from_entries(F.expr(
        "transform(array_distinct(scenes), s -> struct(s, size(filter(scenes, x -> x = s))))"
    ))
    return out.withColumn("scene_counts", scene_counts).drop("scenes")


PLACE_PARTS = ("city", "region", "country")


def _blank_to_null(col: str) -> Column:
    return F.when(F.length(F.trim(F.col(col).cast("string"))) > 0, F.col(col).cast("string"))


def with_place_names(df: DataFrame, gazetteer: bool = True, lat: str = "latitude", lon: str = "longitude"
                     ) -> DataFrame:
    """Adds (or completes) `city`, `region`, `country` and `place` ("City, Country"): from the importer's place
    columns when the table has them (wanderlens import-photos), else, with `gazetteer`, from the coordinates
    through the offline GeoNames gazetteer (`wanderlens.data.places`, looked up in Arrow batches)."""
    has_geo = lat in df.columns and lon in df.columns
    if "city" in df.columns:
        for c in PLACE_PARTS:
            df = df.withColumn(c, _blank_to_null(c) if c in df.columns else F.lit(None).cast("string"))
    elif gazetteer and has_geo:
        @F.pandas_udf("struct<city:string,region:string,country:string>")
        def lookup(la: pd.Series, lo: pd.Series) -> pd.DataFrame:
            from wanderlens.data.places import gazetteer as load

            out = pd.DataFrame({c: pd.Series([None] * len(la), dtype=object) for c in PLACE_PARTS})
            ok = (la.notna() & lo.notna()).to_numpy()
            if ok.any():
                found = load().lookup_many(la[ok].astype(float).tolist(), lo[ok].astype(float).tolist())
                rows = np.flatnonzero(ok)
                for c in PLACE_PARTS:
                    out.loc[rows, c] = [getattr(p, c) or None if p is not None else None for p in found]
            return out

        df = df.withColumn("_gz", lookup(F.col(lat).cast("double"), F.col(lon).cast("double")))
        df = df.select("*", *[F.col(f"_gz.{c}").alias(c) for c in PLACE_PARTS]).drop("_gz")
    else:
        for c in PLACE_PARTS:
            df = df.withColumn(c, F.lit(None).cast("string"))
    named = F.when(F.col("city").isNotNull(), F.concat_ws(", ", "city", "country"))
    own = _blank_to_null("place") if "place" in df.columns else F.lit(None).cast("string")
    return df.withColumn("place", F.coalesce(own, named))


def fill_trip_places(df: DataFrame, trip_col: str = "trip_id") -> DataFrame:
    """A photo without a place takes the place of its trip: that of the nearest earlier photo of the trip that has
    one, else of the next one (a photo without GPS inside a trip was taken there)."""
    require_columns(df, [trip_col, "taken_at", "place"], "fill_trip_places")
    parts = [c for c in ("place", *PLACE_PARTS) if c in df.columns]
    known = F.when(F.col("place").isNotNull(), F.struct(*[F.col(c).alias(c) for c in parts]))
    w = Window.partitionBy(trip_col).orderBy(F.col("taken_at").cast("timestamp"), "photo_id")
    before = F.last(known, ignorenulls=True).over(w.rowsBetween(Window.unboundedPreceding, 0))
    after = F.first(known, ignorenulls=True).over(w.rowsBetween(0, Window.unboundedFollowing))
    timed = df.where(F.col(trip_col).isNotNull()).withColumn("_fill", F.coalesce(before, after))
    for c in [*parts[1:], "place"]:  # `place` last: the others test it
        timed = timed.withColumn(c, F.when(F.col("place").isNull(), F.col(f"_fill.{c}")).otherwise(F.col(c)))
    return timed.drop("_fill").unionByName(df.where(F.col(trip_col).isNull()))
