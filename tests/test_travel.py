"""Travel intelligence: trips, hedged descriptions, suggestions with reasons, held-out evaluation, search.

Unit tests run on small hand-made tables (real Spark, real torch); the integration tests run the travel job on the
featurized sample with a small trained MultiTaskModel.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from wanderlens.travel.describe import describe_photo
from wanderlens.travel.recommend import greedy_pick, label_phrase, suggestion_reason
from wanderlens.travel.search import fit_projection, project_images, recall_at_k
from wanderlens.travel.trips import TripSegmenter, summarize_trips, trip_sentence


# --- trips ----------------------------------------------------------------------------------------------------------
def test_trip_segmenter_cuts_on_time_gap_and_distance(spark):
    t0 = dt.datetime(2024, 6, 1, 9)
    paris, tokyo = (48.86, 2.35), (35.68, 139.65)
    rows = [
        ("p1", "u1", t0, *paris), ("p2", "u1", t0 + dt.timedelta(hours=20), *paris),
        ("p3", "u1", t0 + dt.timedelta(days=9), *paris),                     # 8-day gap: new trip
        ("p4", "u1", t0 + dt.timedelta(days=9, hours=3), *tokyo),            # 9,700 km jump: new trip
        ("p5", "u1", t0 + dt.timedelta(days=9, hours=5), None, None),        # no GPS: stays in the Tokyo trip
        ("p6", "u1", None, *paris),                                          # no time: no trip
        ("q1", "u2", t0, *paris),
    ]
    df = spark.createDataFrame(rows, "photo_id string, user_id string, taken_at timestamp, latitude double, "
                                     "longitude double")
    got = {r["photo_id"]: r["trip_id"] for r in TripSegmenter().transform(df).collect()}
    assert got["p1"] == got["p2"] == "u1/t1"
    assert got["p3"] == "u1/t2"
    assert got["p4"] == got["p5"] == "u1/t3"
    assert got["p6"] is None
    assert got["q1"] == "u2/t1"
    # Looser limits merge them back.
    loose = TripSegmenter(maxGapHours=24 * 30, maxDistanceKm=20000).transform(df).where("trip_id is not null")
    assert loose.where("user_id = 'u1'").select("trip_id").distinct().count() == 1


def test_trip_summary_sentence_counts_days_places_and_sunsets(spark):
    t0 = dt.datetime(2024, 6, 1, 18)
    rows = [(f"p{i}", "u1", t0 + dt.timedelta(days=i // 2, hours=i % 2), "u1/t1",
             "Nice, France" if i < 6 else "Monaco", "beach" if i % 3 else "city", i in (0, 2, 3, 8))
            for i in range(10)]
    df = spark.createDataFrame(rows, "photo_id string, user_id string, taken_at timestamp, trip_id string, "
                                     "place string, scene_label string, is_sunset boolean")
    (row,) = summarize_trips(df).collect()
    assert row["days"] == 5 and row["photos"] == 10
    assert row["places"] == ["Nice, France", "Monaco"]
    assert row["sunset_evenings"] == 3  # days 0, 1 (photos 2 and 3) and 4
    assert row["summary"] == ("Five days in Nice, France and Monaco: mostly beaches and cities, "
                              "sunsets on three evenings.")
    assert trip_sentence(1, [], [], 0) == "One day."


# --- descriptions ---------------------------------------------------------------------------------------------------
def test_descriptions_hedge_by_confidence_and_never_state_guesses():
    sure, claims = describe_photo([("beach", 0.92), ("city", 0.08)], [("water", 0.95), ("boats", 0.6),
                                  ("people", 0.2), ("sunset", 0.9)], [("seashore, coast", 0.5)], None,
                                  "Nice, France", ["Boats in a calm bay.", "A sunny beach"])
    assert sure.startswith("A beach with water, probably with boats at sunset in Nice, France.")
    assert 'It looks like a seashore; similar photos were captioned "Boats in a calm bay" and "A sunny beach".' in sure
    assert "people" not in sure
    stated = {(c["label"], c["stated"]) for c in claims}
    assert stated == {("beach", "fact"), ("water", "fact"), ("sunset", "fact"), ("boats", "hedged")}

    probably, _ = describe_photo([("mountain", 0.6), ("snow", 0.4)], [], None, 15.0)
    assert probably == "Probably a mountain view in the afternoon."
    perhaps, c2 = describe_photo([("lake", 0.4), ("forest", 0.35)], [("trees", 0.7)], None, 23.0)
    assert perhaps == "Perhaps a lake or a forest, likely with trees at night."
    assert all(c["stated"] == "hedged" for c in c2)
    unsure, c3 = describe_photo([("desert", 0.2), ("beach", 0.19)], [("water", 0.45)])
    assert unsure == "A photo." and c3 == []


# --- suggestions ----------------------------------------------------------------------------------------------------
def test_reasons_name_shared_interests_and_similar_travellers():
    scenes = ["beach", "mountain", "lake"]
    ctx = {"name": "Banff", "kind": "mountain", "scenes": scenes, "u_labels": ["mountain", "lake", "snow"],
           "d_labels": ["lake", "mountain"], "covisit": "Zermatt", "sequence": None, "geo": None, "season": None}
    r = suggestion_reason(ctx, {"content": 0.5, "covisit": 0.3, "popularity": -0.2})
    assert r == "You photograph mountains and lakes; Banff has both; travellers who went to Zermatt also went to Banff"
    assert suggestion_reason(ctx, {"als": 1.0}) == "Travellers with trips like yours went to Banff"
    assert suggestion_reason(ctx, {"popularity": -1.0}) == "Banff is popular with travellers and new to you"
    assert "no trips" in suggestion_reason({**ctx, "has_history": False}, {"content": 1.0})


def test_reasons_read_naturally_whatever_the_labels_look_like():
    scenes = ["Religious", "Cultural", "beach", "city"]
    ctx = {"name": "Kyoto", "kind": "Religious", "scenes": scenes, "u_labels": ["Religious", "Cultural"],
           "d_labels": ["Cultural", "Religious"], "covisit": None, "sequence": "Osaka", "geo": "Nara",
           "season": "spring"}
    assert suggestion_reason(ctx, {"content": 1.0}) == ("You photograph religious sites and cultural places; Kyoto "
                                                        "has both")
    assert [label_phrase(x, scenes) for x in ("city", "beach", "water", "Night_Life", "Historic")] == [
        "cities", "beaches", "water", "night life", "historic sites"]
    assert suggestion_reason(ctx, {"sequence": 2.0, "geo_recent": 1.0}) == (
        "After Osaka, travellers often go to Kyoto on their next trip; Kyoto is close to Nara, where you went")
    assert suggestion_reason(ctx, {"kind": 1.0}) == "You often go to religious sites"
    assert suggestion_reason(ctx, {"season": 1.0}) == "Travellers go to Kyoto in spring, when you like to travel"


def test_variety_rerank_mixes_kinds_when_asked():
    scores = np.array([0.99, 0.98, 0.97, 0.96, 0.90, 0.85])
    kinds = ["beach", "beach", "beach", "beach", "city", "mountain"]
    assert greedy_pick(scores, kinds, 4, 0.0) == [0, 1, 2, 3]
    mixed = greedy_pick(scores, kinds, 4, 0.1)
    assert [kinds[i] for i in mixed].count("beach") == 2 and set(mixed) >= {4, 5}


# --- search ---------------------------------------------------------------------------------------------------------
def test_destination_profiles_shrink_towards_their_kind(spark):
    from wanderlens.travel.profiles import destination_profiles

    labels = ["beach", "city", "people"]
    # Three beach photos at d1 (one traveller), one at d2, none at d3 (a beach too) and none at d4 (a city).
    photos = spark.createDataFrame([
        ("a", "d1", [1.0, 0.0, 0.0], [1.0, 0.0]), ("a", "d1", [1.0, 0.0, 0.0], [1.0, 0.0]),
        ("a", "d1", [1.0, 0.0, 0.0], [1.0, 0.0]), ("b", "d2", [0.6, 0.4, 1.0], [0.0, 1.0]),
    ], "user_id string, destination_id string, interest array<double>, joint_embedding array<float>")
    catalog = spark.createDataFrame([("d1", "One", "beach"), ("d2", "Two", "beach"), ("d3", "Three", "beach"),
                                     ("d4", "Four", "city")], "destination_id string, name string, kind string")
    got = {r["destination_id"]: r for r in destination_profiles(photos, catalog, labels, 2, prior_photos=4.0).collect()}
    kind_mean = np.array([0.9, 0.1, 0.25])  # the four beach photos
    np.testing.assert_allclose(got["d3"]["interest"], kind_mean)            # no photos: its kind's photos
    np.testing.assert_allclose(got["d1"]["interest"], (3 * np.array([1.0, 0, 0]) + 4 * kind_mean) / 7)
    np.testing.assert_allclose(got["d2"]["interest"], (np.array([0.6, 0.4, 1.0]) + 4 * kind_mean) / 5)
    np.testing.assert_allclose(got["d3"]["embedding"], [0.75, 0.25], rtol=1e-6)
    assert got["d4"]["interest"] == [0.0, 1.0, 0.0] and got["d4"]["embedding"] is None  # nobody saw a city
    assert (got["d1"]["photos"], got["d2"]["visitors"], got["d3"]["photos"]) == (3, 1, 0)
    raw = {r["destination_id"]: r["interest"] for r in destination_profiles(photos, catalog, labels, 2,
                                                                             prior_photos=0.0).collect()}
    assert raw["d1"] == [1.0, 0.0, 0.0]  # no shrinkage: the photo mean


def test_contrastive_projection_finds_uncaptioned_images_by_text():
    rng = np.random.default_rng(0)
    n, d_img, d_txt = 400, 64, 32
    topics = rng.normal(size=(40, d_txt))
    topic = rng.integers(0, 40, n)
    txt = topics[topic] + 0.1 * rng.normal(size=(n, d_txt))
    mix = rng.normal(size=(d_txt, d_img))
    img = txt @ mix + 0.5 * rng.normal(size=(n, d_img))
    train, test = np.arange(300), np.arange(300, 400)
    W, b = fit_projection(img[train], txt[train], epochs=100, seed=0)
    z = project_images(img, W, b)
    r10 = recall_at_k(z[test], txt[test], np.arange(100), k=10)
    assert r10 >= 0.5, r10          # random ranking would give 0.10
    W0, b0 = fit_projection(img[train], txt[train], epochs=0)
    assert recall_at_k(project_images(img, W0, b0)[test], txt[test], np.arange(100), k=10) > 0.3


# --- the travel job on the featurized sample (the `travel_run` fixture of conftest.py) -------------------------------
def test_travel_job_writes_every_table(spark, travel_run):
    travel_dir, paths = travel_run
    for name in ("photos", "descriptions", "trips", "profiles", "destinations", "suggestions", "search_index",
                 "catalog", "recommender", "joint_space"):
        assert Path(paths[name]).is_dir(), name
    photos = spark.read.parquet(paths["photos"])
    desc = spark.read.parquet(paths["descriptions"])
    assert desc.count() == photos.count() > 0
    assert desc.where(F.length("description") < 10).count() == 0
    # A stated fact always has a probability at or above the fact threshold (0.8); hedged claims below it.
    claims = desc.select(F.explode("claims").alias("c")).select("c.*")
    assert claims.where((F.col("stated") == "fact") & (F.col("probability") < 0.8)).count() == 0
    assert claims.where((F.col("stated") == "hedged") & (F.col("probability") >= 0.8)).count() == 0
    trips = spark.read.parquet(paths["trips"])
    assert trips.where(~F.col("summary").rlike(r"^[A-Z0-9][a-z0-9]* days? ")).count() == 0
    profiles = spark.read.parquet(paths["profiles"]).collect()
    assert {r["user_id"] for r in profiles} == {r["user_id"] for r in photos.select("user_id").distinct().collect()}
    assert all(r["style"] and r["season"] and len(r["embedding"]) == 384 for r in profiles)


def test_suggestions_are_new_places_with_reasons(spark, travel_run):
    travel_dir, paths = travel_run
    sug = spark.read.parquet(paths["suggestions"])
    photos = spark.read.parquet(paths["photos"])
    visited = photos.select("user_id", "destination_id").distinct()
    assert sug.join(visited, ["user_id", "destination_id"]).count() == 0
    per_user = {r["user_id"]: r["count"] for r in sug.groupBy("user_id").count().collect()}
    assert per_user and all(v == 10 for v in per_user.values())
    assert sug.where(F.length("reason") < 15).count() == 0
    # Ranks 1..10 per user, score non-increasing apart from the variety re-rank.
    ranks = sug.groupBy("user_id").agg(F.sort_array(F.collect_list("rank")).alias("r")).collect()
    assert all(r["r"] == list(range(1, 11)) for r in ranks)


def test_store_and_cli_answer_one_user_and_one_query(travel_run):
    import pyarrow.parquet as pq
    from typer.testing import CliRunner

    from wanderlens.cli.main import app
    from wanderlens.travel.store import search, showcase, suggestions_for

    travel_dir, paths = travel_run

    photos = pq.read_table(paths["photos"], columns=["photo_id", "user_id", "caption"]).to_pylist()
    user = sorted({p["user_id"] for p in photos})[0]
    rows = suggestions_for(travel_dir, user, 3)
    assert [r["rank"] for r in rows] == [1, 2, 3]
    captioned = [p for p in photos if p["caption"]]
    hits = search(travel_dir, captioned[0]["caption"], 10)
    assert len(hits) == 10 and hits[0]["score"] >= hits[-1]["score"]
    assert captioned[0]["photo_id"] in {h["photo_id"] for h in hits}
    runner = CliRunner()
    res = runner.invoke(app, ["recommend", "--travel", str(travel_dir), "--user", user, "--k", "3"])
    assert res.exit_code == 0, res.output
    assert "suggestions for" in res.output
    res = runner.invoke(app, ["search", "sunset over the sea", "--travel", str(travel_dir), "--k", "5"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["trips", "--travel", str(travel_dir), "--user", user])
    assert res.exit_code == 0 and "day" in res.output.lower()
    lines = showcase(travel_dir)
    assert [x.split(" ")[0] for x in lines].count("suggestion") == 3 and lines[-1].startswith("search")


def test_unknown_user_is_a_clear_error(travel_run):
    from wanderlens.errors import InputError
    from wanderlens.travel.store import suggestions_for

    with pytest.raises(InputError, match="no suggestions"):
        suggestions_for(travel_run[0], "nobody", 5)


def test_held_out_trip_evaluation_compares_all_methods(spark, travel_run):
    import json

    from wanderlens.travel.evaluate import evaluate_visits
    from wanderlens.travel.signals import SIGNALS

    travel_dir, paths = travel_run
    summary = json.loads((travel_dir / "summary.json").read_text())
    photos = spark.read.parquet(paths["photos"]).where("interest is not null and joint_embedding is not null")
    ev = evaluate_visits(photos, paths["catalog"], k=10, cold_fraction=0.25,
                         params={"labels": summary["interest_labels"], "sceneCount": summary["scene_classes"]})
    methods = [r["method"] for r in ev.warm]
    assert methods[0] == "wanderlens" and set(SIGNALS) | {"random"} <= set(methods)
    assert ev.method in set(SIGNALS) | {"ranker"}
    for r in ev.warm + ev.cold:
        assert 0.0 <= r["ndcg@k"] <= 1.0 and 0.0 <= r["recall@k"] <= 1.0 and r["users"] > 0
    ndcg = {r["method"]: r["ndcg@k"] for r in ev.warm}
    assert ndcg["wanderlens"] == pytest.approx(ndcg[ev.method])  # the chosen method's own row
    for g in ev.gains["warm"]:
        if g["metric"] == "ndcg@k":
            assert g["gain"] == pytest.approx(ndcg["wanderlens"] - ndcg[g["baseline"]], abs=1e-9)
        assert g["low"] <= g["gain"] <= g["high"] and g["users"] == ev.warm[0]["users"]


def test_the_job_fits_the_estimator_with_its_defaults_and_serves_that_model(spark, travel_run):
    from wanderlens.travel.recommend import TravelRecommender, TravelRecommenderModel

    travel_dir, paths = travel_run
    saved = TravelRecommenderModel.load(str(travel_dir / "recommender"))
    default = TravelRecommender()
    set_by_data = {"catalogPath", "labels", "sceneCount"}  # what the job's data decides
    differ = {p.name: (saved.getOrDefault(p.name), default.getOrDefault(p))
              for p in default.params if p.name not in set_by_data and default.hasDefault(p)
              and saved.getOrDefault(p.name) != default.getOrDefault(p)}
    assert not differ  # the travel config's defaults are the estimator's defaults
    mine = {(r["user_id"], r["rank"]): r["destination_id"] for r in saved.recommend(k=10).collect()}
    job = {(r["user_id"], r["rank"]): r["destination_id"]
           for r in spark.read.parquet(paths["suggestions"]).collect()}
    assert mine == job
