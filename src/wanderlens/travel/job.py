"""The travel job: from a features table and a trained MultiTaskModel to the tables a traveller sees.

`run_travel` writes, under its output folder (Parquet unless said): `photos` (predictions, interest, joint
embedding, trip), `descriptions`, `trips`, `profiles`, `destinations` (destination profiles), `suggestions`
(with reasons), `search_index`, `catalog` (the destinations catalog with its description embeddings, which the
recommender reads), plus the fitted `joint_space`, `captions`, `novelty` and `recommender` models and
`summary.json`. Every setting comes from `wanderlens.config.TravelConfig`. The demo, the CLI and the registry (for
the REST service) read these.

Real collections (`wanderlens import-photos`): places are the importer's city/region/country (else the offline
gazetteer's from the coordinates), photos without one take their trip's; a burst of near-identical shots counts
once in trips, profiles and suggestions and is described by its representative; without a destinations catalog
the catalog is derived from the photos (one destination per city photographed). A photo unlike the training
photos (`novelty`, fitted on the labelled photos, or the registry version's) gets no trained-task claims.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from wanderlens.config import DescriptionConfig, TravelConfig, WanderlensConfig
from wanderlens.errors import InputError
from wanderlens.io import atomic_write_parquet, write_json
from wanderlens.travel.captions import CaptionRetriever
from wanderlens.travel.describe import TaskRoles, description_builder, task_roles
from wanderlens.travel.novelty import NoveltyDetector, NoveltyModel, novelty_params
from wanderlens.travel.recommend import TravelRecommender, load_catalog, recommender_params
from wanderlens.travel.search import JointSpaceProjection
from wanderlens.travel.trips import (
    TripSegmenter,
    burst_representative,
    fill_trip_places,
    summarize_trips,
    with_place_names,
)


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
                   thresholds: DescriptionConfig | None = None, gazetteer: bool = True) -> DataFrame:
    """Adds `interest` (scene then attribute probabilities, named by `roles.interest_labels`), `scene_label`
    (predicted scene when at least likely; null for a photo flagged `is_novel`), `is_sunset` (stated as fact),
    `city`, `region`, `country` and `place` (catalog name, else the photo's own place)."""
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
    if "is_novel" in df.columns:  # the trained claims of a photo unlike the training photos are withheld
        sunset = sunset & ~F.col("is_novel")
        if "scene_label" in df.columns:
            df = df.withColumn("scene_label", F.when(~F.col("is_novel"), F.col("scene_label")))
    return _with_place(with_place_names(df.withColumn("is_sunset", sunset), gazetteer), catalog)


def place_destination_id() -> Column:
    """A destination id for a photographed city: "country/region/city" lower-cased, dashes for anything else."""
    key = F.concat_ws("/", *[F.coalesce(F.col(c), F.lit("")) for c in ("country", "region", "city")])
    return F.when(F.col("city").isNotNull(), F.regexp_replace(F.lower(key), r"[^\p{L}\p{N}/]+", "-"))


def _with_place(df: DataFrame, catalog: DataFrame | None) -> DataFrame:
    """`place`: the catalog's "name, country" of the photo's destination, else the photo's own place. Without a
    catalog, a photo without a destination gets the id of its city (`place_destination_id`)."""
    if catalog is None:
        own = F.col("destination_id") if "destination_id" in df.columns else F.lit(None).cast("string")
        return df.withColumn("destination_id", F.coalesce(own, place_destination_id()))
    if "destination_id" not in df.columns:
        return df
    has_country = "country" in catalog.columns
    country = F.col("_country") if has_country else F.lit(None)
    places = catalog.select("destination_id", F.col("name").alias("_name"),
                            *([F.col("country").alias("_country")] if has_country else []))
    df = df.join(F.broadcast(places), "destination_id", "left").withColumn(
        "place", F.coalesce(F.when(country.isNotNull(), F.concat_ws(", ", "_name", country))
                            .otherwise(F.col("_name")), F.col("place")))
    return df.drop("_name", *(["_country"] if has_country else []))


def run_travel(spark: SparkSession, features_dir: str | Path, model_dir: str | Path,
               destinations_csv: str | Path | None, out_dir: str | Path,
               config: TravelConfig | WanderlensConfig | None = None,
               progress: Callable[[str], None] | None = None, novelty: str | Path | None = None,
               fitted: str | Path | None = None) -> dict[str, str]:
    """Describe every photo, cut trips, build profiles, suggest destinations and index photos for search.

    Returns {table name: path}. `config`: the travel settings (a whole WanderlensConfig or its `travel` section;
    None: every default). `destinations_csv` None: the catalog is derived from the photos' cities. `novelty`: a
    saved `NoveltyModel` (e.g. a registry version's `artifacts/travel/novelty`) to use instead of fitting one on
    the labelled photos (a collection without labels needs it to withhold claims). `fitted`: a travel folder
    (a registry version's `artifacts/travel`) whose fitted `joint_space`, `captions` and `novelty` models are used
    instead of fitting new ones: photos without captions or labels (a real collection) cannot fit them.
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

    if novelty is None and fitted is not None and (Path(fitted) / "novelty").is_dir():
        novelty = Path(fitted) / "novelty"
    step("novelty")
    detector = novelty_model(features, model.tasks, cfg, out, novelty)
    preds = model.transform(features)
    if detector is not None:
        preds = detector.transform(preds)
    step("predict")
    photos = _describe_photos(prepare_photos(preds, roles, catalog, cfg.description, cfg.place_names), model,
                              cfg, out, step, fitted)
    paths: dict[str, str] = {"novelty": str(out / "novelty")} if detector is not None else {}
    keep = [c for c in ("photo_id", "user_id", "image_path", "caption", "tags", "taken_at", "local_time",
                        "latitude", "longitude", "destination_id", "place", "city", "region", "country", "trip_id",
                        "burst_id", "burst_representative", "scene_label", "is_sunset", "novelty", "is_novel",
                        "interest", "joint_embedding", "nearest_captions", "description", "claims")
            if c in photos.columns]
    pred_cols = [c for c in photos.columns if c.endswith(("_prediction", "_probability"))]
    atomic_write_parquet(photos.select(*keep, *pred_cols), out / "photos")
    paths["photos"] = str(out / "photos")
    photos = spark.read.parquet(str(out / "photos"))

    atomic_write_parquet(descriptions_table(photos), out / "descriptions")
    paths["descriptions"] = str(out / "descriptions")
    step("trip summaries")
    atomic_write_parquet(summarize_trips(photos), out / "trips")
    paths["trips"] = str(out / "trips")
    if catalog is None:
        catalog = derive_catalog(photos)
    if catalog is not None and not catalog.isEmpty():
        step("suggestions")
        paths.update(_suggest(photos.where(burst_representative(photos)), embed_catalog(catalog), roles, cfg, out))
    step("search index")
    index = photos.where(F.col("joint_embedding").isNotNull() & burst_representative(photos)).select(
        "photo_id", "user_id", "image_path", "caption", "destination_id", "place", "description", "joint_embedding")
    atomic_write_parquet(index, out / "search_index")
    paths["search_index"] = str(out / "search_index")
    paths["joint_space"] = str(out / "joint_space")
    novel = photos.agg(F.sum(F.col("is_novel").cast("int"))).first()[0] if "is_novel" in photos.columns else None
    write_json({"paths": paths, "config": cfg.model_dump(), "interest_labels": roles.interest_labels,
                "scene_classes": len(roles.scene_classes), "photos": photos.count(),
                "novel_photos": novel, "catalog": "derived from the photos" if destinations_csv is None
                else str(destinations_csv)}, out / "summary.json")
    return paths


def novelty_model(features: DataFrame, tasks: list[Any], cfg: TravelConfig, out: Path,
                  saved: str | Path | None = None) -> NoveltyModel | None:
    """The novelty model, saved at `out/novelty`: `saved` when given, else fitted on the photos that carry a label
    of one of the model's tasks (the training photos); None when disabled or when there is nothing to fit on."""
    if not cfg.novelty.enabled:
        return None
    if saved is not None:
        detector = NoveltyModel.load(str(saved))
    else:
        label_cols = [c for c in (getattr(t, "label_col", None) or getattr(t, "name", None) for t in tasks)
                      if c and c in features.columns]
        if not label_cols or cfg.novelty.features_col not in features.columns:
            return None
        labelled = features.where(reduce(lambda a, b: a | b, [F.col(c).isNotNull() for c in label_cols]))
        if labelled.limit(10).count() < 10:
            return None
        detector = NoveltyDetector(**novelty_params(cfg.novelty, cfg.seed)).fit(labelled)
    detector.write().overwrite().save(str(out / "novelty"))
    return detector


def descriptions_table(photos: DataFrame) -> DataFrame:
    """One description per photo, a burst of near-identical shots by its representative alone (`burst_size`: how
    many shots it stands for)."""
    cols = ["photo_id", "user_id", "image_path", "place", "trip_id", "description", "claims", "nearest_captions",
            "novelty", "is_novel", "burst_id"]
    rows = photos.where(burst_representative(photos)).select(*[c for c in cols if c in photos.columns])
    if "burst_id" not in photos.columns:
        return rows.withColumn("burst_size", F.lit(1))
    sizes = photos.where(F.length("burst_id") > 0).groupBy("burst_id").agg(F.count("*").alias("burst_size"))
    return rows.join(sizes, "burst_id", "left").withColumn("burst_size", F.coalesce("burst_size", F.lit(1)))


def derive_catalog(photos: DataFrame) -> DataFrame | None:
    """The destinations catalog of a collection without one: every city photographed (`destination_id` from
    `place_destination_id`), with its country, region, the kind most often predicted there, a description in
    words, where it lies and how many photos / travellers it has. None when no photo has a place."""
    if "city" not in photos.columns:
        return None
    placed = photos.where(F.col("city").isNotNull() & F.col("destination_id").isNotNull()
                          & burst_representative(photos))
    kinds = (placed.where(F.col("scene_label").isNotNull()).groupBy("destination_id", "scene_label").count()
             .groupBy("destination_id").agg(F.max_by("scene_label", F.struct("count", "scene_label")).alias("kind"))
             if "scene_label" in photos.columns else None)
    cat = placed.groupBy("destination_id").agg(
        F.first("city").alias("name"), F.first("country").alias("country"), F.first("region").alias("region"),
        F.avg("latitude").alias("latitude"), F.avg("longitude").alias("longitude"),
        F.count("*").alias("photos"), F.countDistinct("user_id").alias("visitors"))
    if kinds is not None:
        cat = cat.join(kinds, "destination_id", "left")
    else:
        cat = cat.withColumn("kind", F.lit(None).cast("string"))
    where = F.concat_ws(", ", "name", "region", "country")
    cat = cat.withColumn("description", F.concat(F.lit("Photographed in "), where, F.lit(": "),
                                                 F.coalesce(F.col("kind"), F.lit("various scenes")), F.lit(".")))
    return cat.withColumn("tags", F.array_compact(F.array("kind", "country")))


def _describe_photos(photos: DataFrame, model: Any, cfg: TravelConfig, out: Path,
                     step: Callable[[str], None], fitted: str | Path | None = None) -> DataFrame:
    """Joint embeddings, trips (photos without a place take their trip's), nearest captions and descriptions of
    the prepared photos; saves the `joint_space` and `captions` models (fitted here, or those of `fitted`) under
    `out`."""
    from wanderlens.travel.captions import CaptionRetrieverModel
    from wanderlens.travel.search import JointSpaceModel

    reuse = Path(fitted) if fitted is not None else None
    step("joint space")
    joint = JointSpaceModel.load(str(reuse / "joint_space")) if reuse and (reuse / "joint_space").is_dir() else \
        JointSpaceProjection(epochs=cfg.projection_epochs, captionWeight=cfg.caption_weight, seed=cfg.seed).fit(photos)
    joint.write().overwrite().save(str(out / "joint_space"))
    photos = joint.transform(photos)
    step("trips")
    photos = fill_trip_places(TripSegmenter(maxGapHours=cfg.max_gap_hours,
                                            maxDistanceKm=cfg.max_distance_km).transform(photos))
    step("captions")
    retriever = CaptionRetrieverModel.load(str(reuse / "captions")) if reuse and (reuse / "captions").is_dir() \
        else CaptionRetriever(k=cfg.captions_per_photo, seed=cfg.seed).fit(photos)
    retriever.write().overwrite().save(str(out / "captions"))
    photos = retriever.transform(photos)
    step("descriptions")
    return description_builder(model.tasks, cfg.description).transform(photos)


def _user_places(photos: DataFrame) -> DataFrame:
    """Per user, the places photographed, most photographed first (`places`)."""
    counts = photos.where(F.col("place").isNotNull()).groupBy("user_id", "place").count()
    return counts.groupBy("user_id").agg(F.transform(F.sort_array(F.collect_list(F.struct(
        (-F.col("count")).alias("n"), F.col("place").alias("p")))), lambda x: x["p"]).alias("places"))


def _suggest(photos: DataFrame, catalog: DataFrame, roles: TaskRoles, cfg: TravelConfig, out: Path
             ) -> dict[str, str]:
    """Writes the embedded `catalog`, fits and saves the `recommender`, and writes `profiles` (with the places each
    user photographed), `destinations` and `suggestions`; returns their paths."""
    atomic_write_parquet(catalog, out / "catalog")
    rec = TravelRecommender(labels=roles.interest_labels, sceneCount=len(roles.scene_classes),
                            catalogPath=str(out / "catalog"), **recommender_params(cfg)).fit(
        photos.where(F.col("interest").isNotNull() & F.col("joint_embedding").isNotNull()))
    rec.write().overwrite().save(str(out / "recommender"))
    atomic_write_parquet(rec.users.join(_user_places(photos), "user_id", "left"), out / "profiles")
    atomic_write_parquet(rec.destinations, out / "destinations")
    atomic_write_parquet(rec.recommend(k=cfg.suggestions_per_user), out / "suggestions")
    return {k: str(out / k) for k in ("catalog", "profiles", "destinations", "suggestions", "recommender")}


def apply_feature_pipeline(spark: SparkSession, photos_dir: str | Path, pipeline_dir: str | Path,
                           out_dir: str | Path) -> Path:
    """Featurize a photos table with an already fitted feature pipeline (a registry version's
    `artifacts/feature_pipeline`), so a trained model reads vectors built exactly as its training ones were.
    Writes OUT/features (and copies labels.json); returns OUT."""
    import shutil

    from pyspark.ml import PipelineModel

    from wanderlens.features.featurize import read_photos

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    photos, labels = read_photos(spark, photos_dir)
    features = PipelineModel.load(str(pipeline_dir)).transform(photos)
    atomic_write_parquet(features, out / "features")
    if labels is not None and Path(labels).is_file():
        shutil.copyfile(labels, out / "labels.json")
    return out
