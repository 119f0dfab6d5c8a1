"""Visit histories: what the recommender learns from, with or without photos.

A visit is one `(user_id, destination_id, trip_id, visited_at)` row: a check-in, a booking, or the photos a traveller
took at one place on one trip (`visits_from_rows` collapses photos into visits). Places come from the destinations
catalog (`destination_id`, `name`, `kind`, `latitude`, `longitude`, `description`, `tags`); photo content, when there
is some, is one optional signal among others (`wanderlens.travel.signals`).

    visits = spark.createDataFrame([("ana", "d11", "ana/t1", datetime(2024, 5, 2))],
                                   "user_id string, destination_id string, trip_id string, visited_at timestamp")
    model = TravelRecommender(catalogPath="destinations.csv").fit(visits)
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from wanderlens.errors import InputError

VISIT_COLUMNS = ("user_id", "destination_id", "trip_id", "visited_at", "photos")


def time_column(df: DataFrame) -> str:
    """The visit time column: `visited_at` for visit tables, `taken_at` for photos."""
    for c in ("visited_at", "taken_at"):
        if c in df.columns:
            return c
    raise InputError("visits need a time column: `visited_at` (check-ins, bookings) or `taken_at` (photos)")


def visits_from_rows(df: DataFrame) -> DataFrame:
    """One row per (user, trip, place): `visited_at` (first time there on that trip) and `photos` (rows, or the sum
    of a `photos` column). Rows without a place, a trip or a time are left out (they say nothing about where a
    traveller went, or when)."""
    missing = [c for c in ("user_id", "destination_id", "trip_id") if c not in df.columns]
    if missing:
        hint = (" (photos get trip_id from wanderlens.travel.trips.TripSegmenter)" if "trip_id" in missing else "")
        raise InputError(f"visits: missing column(s) {', '.join(missing)}; a visit is (user_id, destination_id, "
                         f"trip_id, visited_at){hint}")
    t = time_column(df)
    count = F.sum("photos") if "photos" in df.columns else F.count("*")
    return (df.where(F.col("destination_id").isNotNull() & F.col("trip_id").isNotNull() & F.col(t).isNotNull())
            .groupBy("user_id", "trip_id", "destination_id")
            .agg(F.min(F.col(t).cast("timestamp")).alias("visited_at"), count.cast("long").alias("photos"))
            .select(*VISIT_COLUMNS))


def check_places(visits: DataFrame, places: DataFrame, source: str = "visits") -> None:
    """An InputError naming a few visited place ids the catalog does not have (and how many there are)."""
    unknown = visits.select("destination_id").distinct().join(places.select("destination_id"), "destination_id",
                                                               "left_anti")
    rows = unknown.orderBy("destination_id").limit(5).collect()
    if rows:
        n = unknown.count()
        ids = ", ".join(repr(r["destination_id"]) for r in rows)
        more = ", ..." if n > 5 else ""
        raise InputError(f"{source}: {n} destination_id(s) not in the destinations catalog ({ids}{more}); add "
                         "them to the catalog or drop those visits")


def with_trip_order(visits: DataFrame) -> DataFrame:
    """Adds `trip_start` and `trips_ago` (0: the user's last trip, 1: the one before, ...)."""
    starts = visits.groupBy("user_id", "trip_id").agg(F.min("visited_at").alias("trip_start"))
    w = Window.partitionBy("user_id").orderBy(F.desc("trip_start"), F.desc("trip_id"))
    starts = starts.withColumn("trips_ago", F.row_number().over(w) - 1)
    return visits.join(starts, ["user_id", "trip_id"])


def last_trip_split(visits: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(history, relevant): each user's last trip hidden; `relevant` has user_id and `relevant` (the places of that
    trip the user had not visited before, sorted). Users with one trip keep it and are not evaluated."""
    ordered = with_trip_order(visits)
    trips = ordered.groupBy("user_id").agg(F.max("trips_ago").alias("_n"))
    tagged = ordered.join(trips, "user_id")
    held = (F.col("trips_ago") == 0) & (F.col("_n") >= 1)
    history = tagged.where(~held).select(*visits.columns)
    test = tagged.where(held)
    seen = history.select("user_id", "destination_id").distinct()
    relevant = (test.select("user_id", "destination_id").distinct().join(seen, ["user_id", "destination_id"],
                                                                         "left_anti")
                .groupBy("user_id").agg(F.array_sort(F.collect_set("destination_id")).alias("relevant")))
    return history, relevant


def first_trips_only(visits: DataFrame, users: list[str]) -> DataFrame:
    """`users` keep only their first trip (simulated newcomers: little history); the others keep everything."""
    if not users:
        return visits
    ordered = with_trip_order(visits)
    first = ordered.groupBy("user_id").agg(F.max("trips_ago").alias("_first"))
    keep = ~F.col("user_id").isin(users) | (F.col("trips_ago") == F.col("_first"))
    return ordered.join(first, "user_id").where(keep).select(*visits.columns)
