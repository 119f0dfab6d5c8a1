"""Batch scoring on Spark: a registry version's feature pipeline + MultiTaskModel over a photo collection of any size.

The photos are listed by Spark (binaryFile without reading content), featurized and predicted on the executors in
Arrow batches, and written as Parquet with `atomic_write_parquet`; only counts come back to the driver.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.errors import InputError
from wanderlens.io import atomic_write_parquet, read_ml_metadata, write_json
from wanderlens.serving.registry import ModelRegistry

IMAGE_GLOB = "*.{jpg,jpeg,JPG,JPEG,png,PNG,webp,WEBP,gif,GIF,bmp,BMP}"


def photos_from_folder(spark: SparkSession, folder: str | Path) -> DataFrame:
    """A photos table (docs/architecture.md columns) for every image file under `folder`, recursively.

    `photo_id` is the path relative to the folder; optional columns are null. An ingested folder (with a `photos`
    table) is read as it is instead.
    """
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise InputError(f"photos folder not found: {folder} (pass a folder of JPEG/PNG photos or an ingested folder)")
    if (folder / "photos").is_dir() and any((folder / "photos").glob("*.parquet")):
        return spark.read.parquet(str(folder / "photos"))
    listing = (spark.read.format("binaryFile").option("recursiveFileLookup", "true")
               .option("pathGlobFilter", IMAGE_GLOB).load(str(folder)).select("path", "length"))
    prefix = folder.as_uri().rstrip("/") + "/"
    local_path = F.regexp_replace(F.col("path"), r"^file:(//)?", "")
    rel = F.regexp_replace(F.col("path"), "^" + _regex_escape(prefix), "")
    rel = F.regexp_replace(rel, "^file:(//)?" + _regex_escape(str(folder)) + "/", "")
    return listing.select(
        rel.alias("photo_id"),
        F.lit(None).cast(T.StringType()).alias("user_id"),
        local_path.alias("image_path"),
        F.lit(None).cast(T.StringType()).alias("caption"),
        F.array().cast(T.ArrayType(T.StringType())).alias("tags"),
        F.lit(None).cast(T.TimestampType()).alias("taken_at"),
        F.lit(None).cast(T.DoubleType()).alias("latitude"),
        F.lit(None).cast(T.DoubleType()).alias("longitude"),
        F.lit(None).cast(T.StringType()).alias("destination_id"),
        F.col("length").alias("num_bytes"),
    )


def _regex_escape(text: str) -> str:
    import re

    return re.escape(text)


def score_frame(spark: SparkSession, photos: DataFrame, version_dir: Path) -> DataFrame:
    """Apply a registry version (feature pipeline, then MultiTaskModel) to a photos DataFrame; lazily."""
    art = Path(version_dir) / "artifacts"
    features = PipelineModel.load(str(art / "feature_pipeline")).transform(photos)
    model = load_multitask_model(art / "model")
    predicted = model.transform(features)
    keep = [c for c in ("photo_id", "user_id", "image_path", "caption", "image_error", "image_tags")
            if c in predicted.columns]
    for task in model.tasks:
        keep += [c for c in (f"{task.name}_prediction", f"{task.name}_probability", f"{task.name}_rawPrediction")
                 if c in predicted.columns]
        if task.type in ("multiclass", "binary") and f"{task.name}_prediction" in predicted.columns:
            names = F.array(*[F.lit(str(c)) for c in task.classes])
            predicted = predicted.withColumn(
                f"{task.name}_label_name", F.element_at(names, F.col(f"{task.name}_prediction").cast("int") + 1))
            keep.append(f"{task.name}_label_name")
        elif task.type == "multilabel" and f"{task.name}_prediction" in predicted.columns:
            predicted = predicted.withColumn(f"{task.name}_label_name",
                                             _index_names(F.col(f"{task.name}_prediction"), task.classes))
            keep.append(f"{task.name}_label_name")
    return predicted.select(*keep)


def _index_names(indices: Any, classes: list[Any]) -> Any:
    """array<double> of class indices -> array<string> of class names."""
    names = F.array(*[F.lit(str(c)) for c in classes])
    return F.transform(indices, lambda i: F.element_at(names, i.cast("int") + 1))


def load_multitask_model(path: Path) -> Any:
    """The MultiTaskModel saved at `path` (a model folder, or a PipelineModel holding one)."""
    from wanderlens.mtl.estimator import MultiTaskModel

    if read_ml_metadata(path).get("class", "").endswith("PipelineModel"):
        pipeline = PipelineModel.load(str(path))
        for stage in pipeline.stages:
            if isinstance(stage, MultiTaskModel):
                return stage
        raise InputError(f"{path}: the saved pipeline holds no MultiTaskModel")
    return MultiTaskModel.load(str(path))


def score_photos(spark: SparkSession, registry: ModelRegistry, model: str, photos: str | Path,
                 out: str | Path) -> dict[str, Any]:
    """Score every photo under `photos` with the registry model `model`; writes OUT/predictions + summary.json."""
    version = registry.resolve(model)
    frame = photos_from_folder(spark, photos)
    out = Path(out).resolve()
    predictions = score_frame(spark, frame, registry.version_dir(version))
    atomic_write_parquet(predictions, out / "predictions")
    written = spark.read.parquet(str(out / "predictions"))
    counts = written.agg(F.count(F.lit(1)).alias("rows"),
                         F.sum(F.col("image_error").isNotNull().cast("int")).alias("errors")
                         if "image_error" in written.columns else F.lit(0).alias("errors")).first()
    summary = {"model": model, "model_version": version, "photos": str(Path(photos).resolve()),
               "predictions": str(out / "predictions"), "rows": int(counts["rows"]),
               "image_errors": int(counts["errors"] or 0),
               "scored_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    write_json(summary, out / "summary.json")
    return summary
