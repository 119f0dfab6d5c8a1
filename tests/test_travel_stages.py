"""The travel stages as pyspark.ml stages: shared Param mixins, defaults from the config, pyspark.ml persistence on
Hadoop paths (file:// URIs here, so no Python file I/O can be involved), `TravelRecommender` inside a `Pipeline`,
its input checks, and the one description path shared by the REST service and the Spark batch job."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.ml.param.shared import HasFeaturesCol, HasMaxIter, HasOutputCol, HasSeed
from pyspark.sql import types as T

from wanderlens.config import DescriptionConfig, TravelConfig
from wanderlens.errors import InputError
from wanderlens.travel.captions import CaptionRetriever, CaptionRetrieverModel
from wanderlens.travel.describe import DescriptionBuilder, describe_predictions, task_roles
from wanderlens.travel.recommend import TravelRecommender, TravelRecommenderModel
from wanderlens.travel.search import JointSpaceModel, JointSpaceProjection
from wanderlens.travel.trips import TripSegmenter

LABELS = ["beach", "city", "water"]


# --- the stage idiom ------------------------------------------------------------------------------------------------
def test_stages_use_shared_mixins_and_config_defaults():
    travel, th = TravelConfig(), DescriptionConfig()
    for cls, mixins in ((DescriptionBuilder, [HasOutputCol]), (TripSegmenter, [HasOutputCol]),
                        (CaptionRetriever, [HasFeaturesCol, HasOutputCol, HasSeed]),
                        (CaptionRetrieverModel, [HasFeaturesCol, HasOutputCol, HasSeed]),
                        (JointSpaceProjection, [HasOutputCol, HasSeed]), (JointSpaceModel, [HasOutputCol, HasSeed]),
                        (TravelRecommender, [HasSeed, HasMaxIter]), (TravelRecommenderModel, [HasSeed, HasMaxIter])):
        stage = cls()  # every stage is constructed without data
        assert all(isinstance(stage, m) for m in mixins), cls
        assert stage.getOrDefault(stage.seed) == travel.seed if isinstance(stage, HasSeed) else True
    rec = TravelRecommender()
    assert (rec.getOrDefault(rec.method), rec.getOrDefault(rec.halflifeDays), rec.getOrDefault(rec.rankerTrees),
            rec.getOrDefault(rec.rankerDepth), rec.getOrDefault(rec.rankerQueries),
            rec.getOrDefault(rec.numSuggestions)) == (
        travel.recommender_method, travel.halflife_days, travel.ranker_trees, travel.ranker_depth,
        travel.ranker_queries, travel.suggestions_per_user)
    builder = DescriptionBuilder()
    assert builder.getOrDefault(builder.factThreshold) == th.fact_threshold
    seg = TripSegmenter()
    assert seg.getOrDefault(seg.maxGapHours) == travel.max_gap_hours
    joint = JointSpaceProjection()
    assert joint.getOrDefault(joint.epochs) == travel.projection_epochs


# --- persistence of stages with data --------------------------------------------------------------------------------
def test_record_round_trip_keeps_arrays_bytes_and_lists(spark, tmp_path):
    from wanderlens.persistence import read_record, read_record_local, write_record

    record = {"weights": b"\x00\x01torch", "matrix": np.arange(6, dtype=np.float32).reshape(2, 3),
              "ids": ["a", "b"], "scores": [1, 2.5], "n": 3, "name": "m", "flag": True}
    write_record(spark, record, (tmp_path / "data").as_uri())
    back = read_record(spark, (tmp_path / "data").as_uri(), ["matrix"])
    assert back["weights"] == record["weights"] and back["ids"] == ["a", "b"] and back["scores"] == [1.0, 2.5]
    assert (back["n"], back["name"], back["flag"]) == (3, "m", True)
    assert back["matrix"].dtype == np.float32 and back["matrix"].shape == (2, 3)
    np.testing.assert_array_equal(back["matrix"], record["matrix"])
    with pytest.raises(TypeError, match="cannot store"):
        write_record(spark, {"bad": object()}, (tmp_path / "bad").as_uri())
    # A saved stage's record is also readable without Spark (for the serving paths).
    model = JointSpaceModel()._set_projection(np.eye(2, dtype=np.float32), np.zeros(2, np.float32))
    model.write().save((tmp_path / "joint").as_uri())
    local = read_record_local(tmp_path / "joint")
    np.testing.assert_array_equal(local["weight"], np.eye(2, dtype=np.float32))


def test_joint_space_and_caption_models_round_trip_on_uris(spark, tmp_path):
    from wanderlens.io import read_ml_metadata

    rng = np.random.default_rng(0)
    rows = [(f"p{i}", f"caption {i % 5}", Vectors.dense(rng.normal(size=6)), Vectors.dense(rng.normal(size=4)),
             1.0 if i % 3 else 0.0) for i in range(24)]
    schema = T.StructType([T.StructField("photo_id", T.StringType()), T.StructField("caption", T.StringType()),
                           T.StructField("image_embedding", VectorUDT()),
                           T.StructField("sentence_embedding", VectorUDT()), T.StructField("has_text", T.DoubleType())])
    df = spark.createDataFrame(rows, schema)
    joint = JointSpaceProjection(epochs=5, seed=3).fit(df)
    uri = (tmp_path / "joint").as_uri()
    joint.write().save(uri)
    with pytest.raises(Exception, match="already exists|exists"):
        joint.write().save(uri)  # pyspark.ml semantics: no silent overwrite
    joint.write().overwrite().save(uri)
    loaded = JointSpaceModel.load(uri)
    assert loaded.uid == joint.uid and loaded.getOrDefault(loaded.seed) == 3
    np.testing.assert_array_equal(loaded.weight, joint.weight)
    assert [r["joint_embedding"] for r in loaded.transform(df).orderBy("photo_id").collect()] == \
        [r["joint_embedding"] for r in joint.transform(df).orderBy("photo_id").collect()]
    assert read_ml_metadata(tmp_path / "joint")["stageData"] == {"data": {"kind": "record",
                                                                           "arrays": ["weight", "bias"]}}

    captions = CaptionRetriever(featuresCol="image_embedding", k=2).fit(df)
    uri = (tmp_path / "captions").as_uri()
    captions.write().save(uri)
    back = CaptionRetrieverModel.load(uri)
    assert back.ref_ids == captions.ref_ids and back.ref_captions == captions.ref_captions
    assert [r["nearest_captions"] for r in back.transform(df).orderBy("photo_id").collect()] == \
        [r["nearest_captions"] for r in captions.transform(df).orderBy("photo_id").collect()]


# --- TravelRecommender: Pipeline, persistence, input checks ---------------------------------------------------------
@pytest.fixture(scope="module")
def travel_photos(spark, tmp_path_factory):
    """Photos of 8 users at 5 destinations (interest over LABELS, 2-d joint embeddings) and a catalog URI."""
    folder = tmp_path_factory.mktemp("rec")
    catalog = [("d1", "Nice", "France", "beach"), ("d2", "Paris", "France", "city"), ("d3", "Lisbon", "Portugal",
               "city"), ("d4", "Crete", "Greece", "beach"), ("d5", "Oslo", "Norway", "city")]
    spark.createDataFrame(catalog, "destination_id string, name string, country string, kind string") \
        .write.parquet((folder / "catalog").as_uri())
    t0 = dt.datetime(2024, 5, 1, 12)
    rows = []
    for u in range(8):
        beachy = u % 2 == 0
        visited = ["d1", "d4"] if beachy else ["d2", "d3"]
        visited = visited[: 1 + u % 2] + (["d5"] if u in (3, 6) else [])
        for j, d in enumerate(visited):
            for n in range(3):
                interest = [0.8, 0.2, 0.7] if beachy else [0.1, 0.9, 0.2]
                emb = [1.0, 0.1 * n] if beachy else [0.1 * n, 1.0]
                rows.append((f"u{u}", d, f"u{u}/t{j + 1}", t0 + dt.timedelta(days=20 * j + n), interest, emb))
    photos = spark.createDataFrame(rows, "user_id string, destination_id string, trip_id string, "
                                         "taken_at timestamp, interest array<double>, joint_embedding array<float>")
    return photos, (folder / "catalog").as_uri()


def test_recommender_in_a_pipeline_saves_loads_and_suggests_the_same(spark, travel_photos, tmp_path):
    photos, catalog = travel_photos
    rec = TravelRecommender(labels=LABELS, sceneCount=2, catalogPath=catalog, numSuggestions=3, rank=2)
    pipeline = Pipeline(stages=[rec])
    pipeline.write().save((tmp_path / "pipeline").as_uri())  # the estimator itself saves (no data in it)
    again = Pipeline.load((tmp_path / "pipeline").as_uri()).getStages()[0]
    assert again.getOrDefault(again.catalogPath) == catalog and again.getOrDefault(again.labels) == LABELS

    fitted = pipeline.fit(photos)
    before = sorted(tuple(r) for r in fitted.transform(photos).collect())
    assert before and {r[0] for r in before} == {f"u{u}" for u in range(8)}
    uri = (tmp_path / "model").as_uri()
    fitted.write().save(uri)
    assert not list(tmp_path.rglob("params.json"))
    loaded = PipelineModel.load(uri)
    stage = loaded.stages[0]
    assert isinstance(stage, TravelRecommenderModel) and stage.getOrDefault(stage.numSuggestions) == 3
    after = sorted(tuple(r) for r in loaded.transform(photos).collect())
    assert [r[:4] for r in after] == [r[:4] for r in before]  # user, rank, destination, name
    np.testing.assert_allclose([r[6] for r in after], [r[6] for r in before], rtol=1e-9)  # score
    assert [r[7] for r in after] == [r[7] for r in before]  # reason


def test_recommender_input_errors_are_clear(travel_photos):
    photos, catalog = travel_photos
    with pytest.raises(InputError, match="`labels` Param is empty"):
        TravelRecommender(catalogPath=catalog).fit(photos)
    with pytest.raises(InputError, match="interest` vectors have 3 values but `labels` names 2"):
        TravelRecommender(labels=["beach", "city"], sceneCount=2, catalogPath=catalog).fit(photos)
    with pytest.raises(InputError, match="set catalogPath"):
        TravelRecommender(labels=LABELS, sceneCount=2).fit(photos)
    with pytest.raises(InputError, match="destinations catalog not readable"):
        TravelRecommender(labels=LABELS, sceneCount=2, catalogPath=catalog + "-missing").fit(photos)


# --- one description path -------------------------------------------------------------------------------------------
def test_task_roles_find_scene_and_time_of_day_whatever_their_order():
    tasks = [{"name": "time_of_day", "type": "multiclass", "classes": ["day", "sunset", "night"]},
             {"name": "highlight", "type": "binary", "classes": [0, 1]},
             {"name": "scene", "type": "multiclass", "classes": ["beach", "city"]},
             {"name": "attributes", "type": "multilabel", "classes": ["water", "boats"]}]
    roles = task_roles(tasks)
    assert (roles.scene, roles.attributes, roles.time) == ("scene", "attributes", "time_of_day")
    assert roles.interest_labels == ["beach", "city", "water", "boats"]
    text, claims = describe_predictions(roles, {"time_of_day": [0.05, 0.9, 0.05], "scene": [0.95, 0.05],
                                                "attributes": [0.9, 0.2], "highlight": [0.3, 0.7]})
    assert text == "A beach with water at sunset."
    assert {(c["task"], c["label"]) for c in claims} == {("time_of_day", "sunset"), ("scene", "beach"),
                                                         ("attributes", "water")}


@pytest.fixture(scope="module")
def registry_version(spark, featurized_dir, tmp_path_factory):
    """A registry version (feature pipeline + a small model trained on the sample), as the REST service loads."""
    from wanderlens.mtl.train import train_from_config
    from wanderlens.serving.registry import ModelRegistry

    out = tmp_path_factory.mktemp("describe_parity")
    train_from_config(spark, featurized_dir, {"training": {"epochs": 8, "seed": 0}}, out / "model")
    registry = ModelRegistry(out / "registry")
    version = registry.register(featurized_dir / "feature_pipeline", out / "model", metadata={"source": "tests"})
    return registry.version_dir(version)


def test_service_and_spark_batch_give_the_same_description(spark, registry_version, ingested_dir):
    """`/v1/describe` (ServedModel, no Spark) and the Spark DescriptionBuilder say the same of the same photo."""
    from pathlib import Path

    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    from wanderlens.serving.model import ServedModel
    from wanderlens.serving.scoring import photos_from_folder, score_frame
    from wanderlens.travel.describe import description_builder

    served = ServedModel.load(registry_version)
    assert task_roles(served.tasks).time == "time_of_day"  # the sample model predicts the time of day
    rows = [r for r in pq.read_table(str(ingested_dir / "photos")).to_pylist() if r.get("image_path")][:12]
    frame = photos_from_folder(spark, ingested_dir).where(F.col("photo_id").isin([r["photo_id"] for r in rows]))
    # The service knows no clock time, place or nearest captions: the batch path describes without them too.
    preds = score_frame(spark, frame, registry_version)
    batch = {r["photo_id"]: r for r in description_builder(served.tasks).transform(preds)
             .select("photo_id", "description", "claims").collect()}
    assert len(batch) == len(rows)
    for row in rows:
        image = Path(str(row["image_path"]).removeprefix("file://")).read_bytes()
        answer = served.describe(image, row.get("caption"), row.get("tags") or [])
        spark_row = batch[row["photo_id"]]
        assert answer["description"] == spark_row["description"], row["photo_id"]
        assert [(c["task"], c["label"], c["stated"]) for c in answer["claims"]] == \
            [(c["task"], c["label"], c["stated"]) for c in spark_row["claims"]]
