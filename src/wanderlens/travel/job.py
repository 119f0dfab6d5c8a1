"""The travel job: from a features table and a trained MultiTaskModel to the tables a traveller sees.

`run_travel` writes, under its output folder (Parquet unless said): `photos` (predictions, interest, joint
embedding, trip), `descriptions`, `trips`, `profiles`, `destinations` (destination profiles), `suggestions`
(with reasons), `search_index`, plus the fitted `joint_space`, `captions` and `recommender` models and
`summary.json`. The demo, the CLI and the registry (for the REST service) read these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from wanderlens.errors import InputError
from wanderlens.io import atomic_write_parquet, write_json
from wanderlens.travel.captions import CaptionRetriever
from wanderlens.travel.describe import DescriptionBuilder
from wanderlens.travel.recommend import TravelRecommender
from wanderlens.travel.search import JointSpaceProjection
from wanderlens.travel.trips import TripSegmenter, summarize_trips

# Suggestion weights as tuned on validation by bench_travel (16,000-photo samples, docs/benchmarks.md); the variety
# penalty is a product choice (validation mostly prefers none: variety costs a little accuracy).
DEFAULTS: dict[str, Any] = {
    "fact_threshold": 0.8, "likely_threshold": 0.5, "possible_threshold": 0.3, "captions_per_photo": 2,
    "max_gap_hours": 36.0, "max_distance_km": 400.0, "content_weight": 0.25, "popularity_weight": 0.5,
    "new_user_content_weight": 0.33,
    "diversity": 0.3, "suggestions_per_user": 10, "projection_epochs": 150, "caption_weight": 0.5, "seed": 0,
}


def pick_tasks(tasks: list) -> tuple[Any | None, Any | None]:
    """The multiclass task that names the scene and the multi-label task of attributes (by name, else first)."""
    multi = [t for t in tasks if t.type == "multiclass" and t.name != "time_of_day"]
    labels = [t for t in tasks if t.type == "multilabel"]
    scene = next((t for t in multi if t.name == "scene"), multi[0] if multi else None)
    attrs = next((t for t in labels if t.name == "attributes"), labels[0] if labels else None)
    return scene, attrs


def time_task(tasks: list) -> Any | None:
    """The multiclass `time_of_day` task when the model has one."""
    return next((t for t in tasks if t.type == "multiclass" and t.name == "time_of_day"), None)


def description_builder(tasks: list, cfg: dict[str, Any] | None = None) -> DescriptionBuilder:
    """A DescriptionBuilder wired to a model's tasks (scene, attributes, time of day) and thresholds."""
    cfg = {**DEFAULTS, **(cfg or {})}
    scene, attrs = pick_tasks(tasks)
    tod = time_task(tasks)
    return DescriptionBuilder(
        sceneTask=scene.name if scene else "scene", sceneClasses=[str(c) for c in scene.classes] if scene else [],
        attributeTask=attrs.name if attrs else "attributes",
        attributeClasses=[str(c) for c in attrs.classes] if attrs else [],
        timeTask=tod.name if tod else "time_of_day", timeClasses=[str(c) for c in tod.classes] if tod else [],
        factThreshold=float(cfg["fact_threshold"]), likelyThreshold=float(cfg["likely_threshold"]),
        possibleThreshold=float(cfg["possible_threshold"]),
    )


def read_catalog(spark: SparkSession, destinations_csv: str | Path | None) -> DataFrame | None:
    """The destinations catalog CSV (destination_id, name, country, kind, description, tags, ...), or None."""
    if destinations_csv is None:
        return None
    p = Path(destinations_csv)
    if not p.is_file():
        raise InputError(f"destinations catalog not found: {p} (pass the destinations.csv of the collection)")
    cat = spark.read.csv(str(p), header=True, inferSchema=False)
    missing = [c for c in ("destination_id", "name") if c not in cat.columns]
    if missing:
        raise InputError(f"destinations catalog {p}: missing column(s) {', '.join(missing)}; "
                         "it needs destination_id and name (country, kind, description, tags optional)")
    if "tags" in cat.columns:
        cat = cat.withColumn("tags", F.split(F.coalesce(F.col("tags"), F.lit("")), ";"))
    return cat


def embed_catalog(catalog: DataFrame) -> DataFrame:
    """Adds `description_embedding` (array<float>): the description and tags in the MiniLM sentence space."""
    from wanderlens.features import SentenceEmbedder

    if "description" not in catalog.columns:
        return catalog
    emb = SentenceEmbedder(captionCol="description", tagsCol="tags",
                           outputCol="_desc_vec", presenceCol="_desc_has")
    tagged = catalog if "tags" in catalog.columns else catalog.withColumn("tags", F.array().cast("array<string>"))
    out = emb.transform(tagged)
    return out.withColumn("description_embedding", F.when(F.col("_desc_has") > 0, vector_to_array(
        "_desc_vec", "float32"))).drop("_desc_vec", "_desc_has")


def prepare_photos(preds: DataFrame, scene, attrs, catalog: DataFrame | None, likely: float, fact: float
                   ) -> tuple[DataFrame, list[str], int]:
    """Adds `interest` (scene then attribute probabilities), `scene_label` (predicted scene when at least
    likely), `is_sunset`, and `place` (catalog name, country); returns (df, interest labels, scene count)."""
    parts, labels, sc = [], [], 0
    if scene is not None:
        parts.append(vector_to_array(f"{scene.name}_probability"))
        labels += [str(c) for c in scene.classes]
        sc = len(scene.classes)
    if attrs is not None:
        parts.append(vector_to_array(f"{attrs.name}_probability"))
        labels += [str(c) for c in attrs.classes]
    df = preds.withColumn("interest", F.concat(*parts) if parts else F.array().cast("array<double>"))
    if scene is not None:
        names = F.array(*[F.lit(str(c)) for c in scene.classes])
        top = F.array_max(vector_to_array(f"{scene.name}_probability"))
        df = df.withColumn("scene_label", F.when(top >= likely, F.element_at(
            names, F.col(f"{scene.name}_prediction").cast("int") + 1)))
    sunset = F.lit(False)
    if attrs is not None and "sunset" in [str(c) for c in attrs.classes]:
        i = [str(c) for c in attrs.classes].index("sunset")
        sunset = vector_to_array(f"{attrs.name}_probability")[i] >= fact
    if scene is not None and "sunset" in [str(c) for c in scene.classes]:
        sunset = sunset | (F.col("scene_label") == "sunset")
    df = df.withColumn("is_sunset", sunset)
    if catalog is not None and "destination_id" in df.columns:
        country = F.col("_country") if "country" in catalog.columns else F.lit(None)
        places = catalog.select("destination_id", F.col("name").alias("_name"),
                                *([F.col("country").alias("_country")] if "country" in catalog.columns else []))
        df = df.join(F.broadcast(places), "destination_id", "left").withColumn(
            "place", F.when(country.isNotNull(), F.concat_ws(", ", "_name", country)).otherwise(F.col("_name")))
        df = df.drop("_name", *(["_country"] if "country" in catalog.columns else []))
    else:
        df = df.withColumn("place", F.lit(None).cast("string"))
    return df, labels, sc


def run_travel(spark: SparkSession, features_dir: str | Path, model_dir: str | Path,
               destinations_csv: str | Path | None, out_dir: str | Path, config: dict | None = None,
               progress=None) -> dict[str, str]:
    """Describe every photo, cut trips, build profiles, suggest destinations and index photos for search.

    Returns {table name: path}. `config` overrides DEFAULTS (e.g. fact_threshold, content_weight).
    """
    from wanderlens.mtl.estimator import MultiTaskModel
    from wanderlens.mtl.train import features_table

    cfg = {**DEFAULTS, **(config or {})}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda name: None)
    if not Path(model_dir).is_dir():
        raise InputError(f"model not found at {model_dir}; train one with 'wanderlens train --out DIR'")
    features = spark.read.parquet(str(features_table(features_dir)))
    model = MultiTaskModel.load(str(model_dir))
    scene, attrs = pick_tasks(model.tasks)
    catalog = read_catalog(spark, destinations_csv)

    step("predict")
    preds = model.transform(features)
    photos, labels, sc = prepare_photos(preds, scene, attrs, catalog, cfg["likely_threshold"],
                                        cfg["fact_threshold"])
    step("joint space")
    joint = JointSpaceProjection(epochs=int(cfg["projection_epochs"]), captionWeight=float(cfg["caption_weight"]),
                                 seed=int(cfg["seed"])).fit(photos)
    joint.write().overwrite().save(str(out / "joint_space"))
    photos = joint.transform(photos)
    step("trips")
    photos = TripSegmenter(maxGapHours=float(cfg["max_gap_hours"]),
                           maxDistanceKm=float(cfg["max_distance_km"])).transform(photos)
    step("captions")
    retriever = CaptionRetriever(k=int(cfg["captions_per_photo"]), seed=int(cfg["seed"])).fit(photos)
    retriever.write().overwrite().save(str(out / "captions"))
    photos = retriever.transform(photos)
    step("descriptions")
    photos = description_builder(model.tasks, cfg).transform(photos)
    keep = [c for c in ("photo_id", "user_id", "image_path", "caption", "tags", "taken_at", "latitude", "longitude",
                        "destination_id", "place", "trip_id", "scene_label", "is_sunset", "interest",
                        "joint_embedding", "nearest_captions", "description", "claims") if c in photos.columns]
    pred_cols = [c for c in photos.columns if c.endswith(("_prediction", "_probability"))]
    paths: dict[str, str] = {}
    atomic_write_parquet(photos.select(*keep, *pred_cols), out / "photos")
    paths["photos"] = str(out / "photos")
    photos = spark.read.parquet(str(out / "photos"))

    atomic_write_parquet(photos.select("photo_id", "user_id", "image_path", "place", "trip_id", "description",
                                       "claims", "nearest_captions"), out / "descriptions")
    paths["descriptions"] = str(out / "descriptions")
    step("trip summaries")
    atomic_write_parquet(summarize_trips(photos), out / "trips")
    paths["trips"] = str(out / "trips")

    if catalog is not None and "destination_id" in photos.columns:
        step("suggestions")
        rec = TravelRecommender(embed_catalog(catalog).cache(), labels=labels, sceneCount=sc,
                                contentWeight=float(cfg["content_weight"]),
                                popularityWeight=float(cfg["popularity_weight"]),
                                newUserContentWeight=float(cfg["new_user_content_weight"]),
                                diversity=float(cfg["diversity"]),
                                seed=int(cfg["seed"])).fit(photos.where(F.col("interest").isNotNull()
                                                                        & F.col("joint_embedding").isNotNull()))
        rec.write().overwrite().save(str(out / "recommender"))
        atomic_write_parquet(rec.users, out / "profiles")
        atomic_write_parquet(rec.destinations, out / "destinations")
        suggestions = rec.recommend(k=int(cfg["suggestions_per_user"]))
        atomic_write_parquet(suggestions, out / "suggestions")
        paths.update({k: str(out / k) for k in ("profiles", "destinations", "suggestions", "recommender")})
    step("search index")
    index = photos.where(F.col("joint_embedding").isNotNull()).select(
        "photo_id", "user_id", "image_path", "caption", "destination_id", "place", "description", "joint_embedding")
    atomic_write_parquet(index, out / "search_index")
    paths["search_index"] = str(out / "search_index")
    paths["joint_space"] = str(out / "joint_space")
    write_json({"paths": paths, "config": cfg, "interest_labels": labels, "scene_classes": sc,
                "photos": photos.count()}, out / "summary.json")
    return paths
