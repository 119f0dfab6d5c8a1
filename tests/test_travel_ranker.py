"""Suggestions from visit histories: every signal finds something on the sample's travel histories, the inputs are
checked, users without history get the documented fallback (real Spark, real xgboost, no mocks)."""

from __future__ import annotations

import csv
import datetime as dt

import numpy as np
import pytest
from pyspark.sql import functions as F

from wanderlens.data.destinations import DESTINATIONS, SCENES
from wanderlens.data.sample import ATTRIBUTES, _plan
from wanderlens.errors import InputError
from wanderlens.travel.ranker import per_user_metrics
from wanderlens.travel.recommend import TravelRecommender
from wanderlens.travel.signals import SIGNALS
from wanderlens.travel.trips import TripSegmenter
from wanderlens.travel.visits import last_trip_split, visits_from_rows

LABELS = list(SCENES) + list(ATTRIBUTES)


@pytest.fixture(scope="module")
def sample_visits(spark, tmp_path_factory):
    """The sample's travel histories without pixels (6,000 planned photos of 200 travellers, seed 5): photo rows
    with trips cut by TripSegmenter and the annotated content as `interest`; and the catalog as a CSV."""
    folder = tmp_path_factory.mktemp("visits")
    rows = [(r["photo_id"], r["user_id"], r["taken_at"].replace(tzinfo=None), r["lat"], r["lon"],
             r["dest"].destination_id, [1.0 if x == r["scene"] or x in r["attrs"] else 0.0 for x in LABELS])
            for r in _plan(6000, 200, 5)]
    df = spark.createDataFrame(rows, "photo_id string, user_id string, taken_at timestamp, latitude double, "
                                     "longitude double, destination_id string, interest array<double>")
    with open(folder / "destinations.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["destination_id", "name", "country", "kind", "latitude", "longitude"])
        for d in DESTINATIONS:
            w.writerow([d.destination_id, d.name, d.country, d.kind, d.latitude, d.longitude])
    return TripSegmenter().transform(df).localCheckpoint(), str(folder / "destinations.csv")


def test_each_signal_alone_beats_random_on_the_sample(sample_visits):
    photos, catalog = sample_visits
    history, relevant = last_trip_split(visits_from_rows(photos))
    relevant = relevant.where(F.size("relevant") > 0).localCheckpoint()
    train = photos.join(history.select("user_id", "trip_id").distinct(), ["user_id", "trip_id"])
    # A fixed method trains no ranker: this measures the signals themselves.
    model = TravelRecommender(labels=LABELS, sceneCount=len(SCENES), catalogPath=catalog,
                              method="popularity").fit(train)
    assert model.choice.method == "popularity" and not model.choice.booster
    lists = model.ranked_lists(relevant.select("user_id"), [*SIGNALS, "random"], 10)
    per = per_user_metrics(lists, relevant, 10)
    ndcg = {m: float(np.mean([v["ndcg"] for v in per[m].values()])) for m in per}
    assert len(per["random"]) >= 60
    for s in SIGNALS:
        assert ndcg[s] > ndcg["random"] + 0.02, (s, ndcg)


def test_the_learned_ranker_is_chosen_only_against_its_parts_and_explains_itself(sample_visits, tmp_path):
    photos, catalog = sample_visits
    visits = visits_from_rows(photos).drop("photos")  # plain visits: no photos, no content
    model = TravelRecommender(catalogPath=catalog).fit(visits)
    val = model.choice.validation
    assert set(SIGNALS) <= set(val) and model.choice.method in val
    assert val[model.choice.method] == max(val.values())  # never below one of its parts on validation
    users = visits.select("user_id").distinct().orderBy("user_id").limit(3)
    sug = model.recommend(users, k=5).collect()
    assert len(sug) == 15 and all(len(r["reason"]) > 15 and r["reason"][0].isupper() for r in sug)
    fast = model.rank_users(users, k=5).collect()
    assert sorted((r["user_id"], r["rank"], r["destination_id"]) for r in fast) == \
        sorted((r["user_id"], r["rank"], r["destination_id"]) for r in sug)
    model.write().save((tmp_path / "rec").as_uri())
    back = type(model).load((tmp_path / "rec").as_uri())
    assert back.choice.method == model.choice.method and back.choice.booster == model.choice.booster
    assert sorted(tuple(r) for r in back.rank_users(users, k=5).collect()) == sorted(tuple(r) for r in fast)


def test_visit_inputs_are_checked_and_newcomers_get_popular_places(spark, sample_visits, tmp_path):
    photos, catalog = sample_visits
    with pytest.raises(InputError, match="`labels` Param is empty"):
        TravelRecommender(catalogPath=catalog).fit(photos)
    with pytest.raises(InputError, match="have 18 values but `labels` names 8"):
        TravelRecommender(labels=list(SCENES), sceneCount=8, catalogPath=catalog).fit(photos)
    t = dt.datetime(2024, 5, 1)
    bad = spark.createDataFrame([("a", "d01", "a/t1", t), ("a", "nowhere", "a/t2", t)],
                                "user_id string, destination_id string, trip_id string, visited_at timestamp")
    with pytest.raises(InputError, match="1 destination_id\\(s\\) not in the destinations catalog \\('nowhere'\\)"):
        TravelRecommender(catalogPath=catalog).fit(bad)
    with pytest.raises(InputError, match="unknown method 'vibes'; use 'auto', 'ranker' or one of popularity"):
        TravelRecommender(catalogPath=catalog, method="vibes").fit(bad)
    with pytest.raises(InputError, match="missing column\\(s\\) trip_id"):
        TravelRecommender(catalogPath=catalog).fit(bad.drop("trip_id"))
    visits = visits_from_rows(photos).drop("photos")
    model = TravelRecommender(catalogPath=catalog, method="covisit").fit(visits)
    new = model.recommend(spark.createDataFrame([("newcomer",)], "user_id string"), k=3).collect()
    pop = model.rank_users(spark.createDataFrame([("u000",)], "user_id string"), k=40, method="popularity").collect()
    assert [r["rank"] for r in new] == [1, 2, 3] and all("no trips with us yet" in r["reason"] for r in new)
    with pytest.raises(InputError, match="unknown ranking method"):
        model.rank_users(k=3, method="vibes")
    assert pop  # a known user is ranked too
