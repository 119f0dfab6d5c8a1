"""The travel job: from a features table and a trained MultiTaskModel to the tables a traveller sees.

`run_travel` writes, under its output folder (Parquet unless said): `photos` (predictions, interest, joint
embedding, trip), `descriptions`, `trips`, `profiles`, `destinations` (destination profiles), `suggestions`
(with reasons), `search_index`, `catalog` (the destinations catalog with its description embeddings, which the
recommender reads), plus the fitted `joint_space`, `captions` and `recommender` models and `summary.json`. Every
setting comes from `wanderlens.config.TravelConfig`. The demo, the CLI and the registry (for the REST service) read
these.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from wanderlens.config import DescriptionConfig, TravelConfig, WanderlensConfig
from wanderlens.errors import InputError
from wanderlens.io import atomic_write_parquet, write_json
from wanderlens.travel.captions import CaptionRetriever
from wanderlens.travel.describe import TaskRoles, description_builder, task_roles
from wanderlens.travel.recommend import TravelRecommender, load_catalog, recommender_params
from wanderlens.travel.search import JointSpaceProjection
from wanderlens.travel.trips import TripSegmenter, summarize_trips


def travel_config(config: TravelConfig | WanderlensConfig | None) -> TravelConfig:
    """The travel section of a config (None: every default)."""
    if config is None:
        return TravelConfig()
    return config.travel if isinstance(config, WanderlensConfig) else config


def read_catalog(spark: SparkSession, destinations: str | Path | None) -> DataFrame | None:
    """The destinations catalog (CSV or Parquet, any Hadoop path; see `load_catalog`), or None."""
    return None if destinations is None else load_catalog(spark, destinations)


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


def prepare_photos(preds: DataFrame, roles: TaskRoles, catalog: DataFrame | None,
                   thresholds: DescriptionConfig | None = None) -> DataFrame:
    """Adds `interest` (scene then attribute probabilities, named by `roles.interest_labels`), `scene_label`
    (predicted scene when at least likely), `is_sunset` (stated as fact) and `place` (catalog name, country)."""
    th = thresholds or DescriptionConfig()
    parts = [vector_to_array(f"{task}_probability") for task in (roles.scene, roles.attributes) if task is not None]
    df = preds.withColumn("interest", F.concat(*parts) if parts else F.array().cast("array<double>"))
    sunset = F.lit(False)
    if roles.scene is not None:
        names = F.array(*[F.lit(c) for c in roles.scene_classes])
        top = F.array_max(vector_to_array(f"{roles.scene}_probability"))
        df = df.withColumn("scene_label", F.when(top >= th.likely_threshold, F.element_at(
            names, F.col(f"{roles.scene}_prediction").cast("int") + 1)))
    if roles.attributes is not None and "sunset" in roles.attribute_classes:
        i = roles.attribute_classes.index("sunset")
        sunset = vector_to_array(f"{roles.attributes}_probability")[i] >= th.fact_threshold
    if roles.scene is not None and "sunset" in roles.scene_classes:
        sunset = sunset | (F.col("scene_label") == "sunset")
    return _with_place(df.withColumn("is_sunset", sunset), catalog)


def _with_place(df: DataFrame, catalog: DataFrame | None) -> DataFrame:
    """Adds `place`: the catalog's "name, country" of the photo's destination (null without one)."""
    if catalog is None or "destination_id" not in df.columns:
        return df.withColumn("place", F.lit(None).cast("string"))
    has_country = "country" in catalog.columns
    country = F.col("_country") if has_country else F.lit(None)
    places = catalog.select("destination_id", F.col("name").alias("_name"),
                            *([F.col("country").alias("_country")] if has_country else []))
    df = df.join(F.broadcast(places), "destination_id", "left").withColumn(
        "place", F.when(country.isNotNull(), F.concat_ws(", ", "_name", country)).otherwise(F.col("_name")))
    return df.drop("_name", *(["_country"] if has_country else []))


def run_travel(spark: SparkSession, features_dir: str | Path, model_dir: str | Path,
               destinations_csv: str | Path | None, out_dir: str | Path,
               config: TravelConfig | WanderlensConfig | None = None,
               progress: Callable[[str], None] | None = None) -> dict[str, str]:
    """Describe every photo, cut trips, build profiles, suggest destinations and index photos for search.

    Returns {table name: path}. `config`: the travel settings (a whole WanderlensConfig or its `travel` section;
    None: every default).
    """
    from wanderlens.mtl.estimator import MultiTaskModel
    from wanderlens.mtl.train import features_table

    cfg = travel_config(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    step = progress or (lambda name: None)
    if not Path(model_dir).is_dir():
        raise InputError(f"model not found at {model_dir}; train one with 'wanderlens train --out DIR'")
    features = spark.read.parquet(str(features_table(features_dir)))
    model = MultiTaskModel.load(str(model_dir))
    roles = task_roles(model.tasks)
    catalog = read_catalog(spark, destinations_csv)

    step("predict")
    photos = _describe_photos(prepare_photos(model.transform(features), roles, catalog, cfg.description), model,
                              cfg, out, step)
    paths: dict[str, str] = {}
    keep = [c for c in ("photo_id", "user_id", "image_path", "caption", "tags", "taken_at", "latitude", "longitude",
                        "destination_id", "place", "trip_id", "scene_label", "is_sunset", "interest",
                        "joint_embedding", "nearest_captions", "description", "claims") if c in photos.columns]
    pred_cols = [c for c in photos.columns if c.endswith(("_prediction", "_probability"))]
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
        paths.update(_suggest(photos, embed_catalog(catalog), roles, cfg, out))
    step("search index")
    index = photos.where(F.col("joint_embedding").isNotNull()).select(
        "photo_id", "user_id", "image_path", "caption", "destination_id", "place", "description", "joint_embedding")
    atomic_write_parquet(index, out / "search_index")
    paths["search_index"] = str(out / "search_index")
    paths["joint_space"] = str(out / "joint_space")
    write_json({"paths": paths, "config": cfg.model_dump(), "interest_labels": roles.interest_labels,
                "scene_classes": len(roles.scene_classes), "photos": photos.count()}, out / "summary.json")
    return paths


def _describe_photos(photos: DataFrame, model: Any, cfg: TravelConfig, out: Path,
                     step: Callable[[str], None]) -> DataFrame:
    """Joint embeddings, trips, nearest captions and descriptions of the prepared photos; saves the fitted
    `joint_space` and `captions` models under `out`."""
    step("joint space")
    joint = JointSpaceProjection(epochs=cfg.projection_epochs, captionWeight=cfg.caption_weight,
                                 seed=cfg.seed).fit(photos)
    joint.write().overwrite().save(str(out / "joint_space"))
    photos = joint.transform(photos)
    step("trips")
    photos = TripSegmenter(maxGapHours=cfg.max_gap_hours, maxDistanceKm=cfg.max_distance_km).transform(photos)
    step("captions")
    retriever = CaptionRetriever(k=cfg.captions_per_photo, seed=cfg.seed).fit(photos)
    retriever.write().overwrite().save(str(out / "captions"))
    photos = retriever.transform(photos)
    step("descriptions")
    return description_builder(model.tasks, cfg.description).transform(photos)


def _suggest(photos: DataFrame, catalog: DataFrame, roles: TaskRoles, cfg: TravelConfig, out: Path
             ) -> dict[str, str]:
    """Writes the embedded `catalog`, fits and saves the `recommender`, and writes `profiles`, `destinations` and
    `suggestions`; returns their paths."""
    atomic_write_parquet(catalog, out / "catalog")
    rec = TravelRecommender(labels=roles.interest_labels, sceneCount=len(roles.scene_classes),
                            catalogPath=str(out / "catalog"), **recommender_params(cfg)).fit(
        photos.where(F.col("interest").isNotNull() & F.col("joint_embedding").isNotNull()))
    rec.write().overwrite().save(str(out / "recommender"))
    atomic_write_parquet(rec.users, out / "profiles")
    atomic_write_parquet(rec.destinations, out / "destinations")
    atomic_write_parquet(rec.recommend(k=cfg.suggestions_per_user), out / "suggestions")
    return {k: str(out / k) for k in ("catalog", "profiles", "destinations", "suggestions", "recommender")}
