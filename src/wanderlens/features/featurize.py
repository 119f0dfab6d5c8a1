"""`featurize`: photos table -> features table, with image embeddings cached by image content hash.

One fitted `PipelineModel` (TextFeaturizer model, ImageEmbedder, SentenceEmbedder, ModalityFusion) is saved beside
the features for reuse at serving time. Image embeddings are kept in a cache table keyed by `sha256` and the encoder
settings, so a rerun embeds only new or changed photos; the summary counts computed vs cached images.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from wanderlens.config import FeaturesConfig, WanderlensConfig, parse_config
from wanderlens.errors import InputError
from wanderlens.features.encoders import get_encoder
from wanderlens.features.fusion import ModalityFusion
from wanderlens.features.image import ImageEmbedder
from wanderlens.features.sentence import SENTENCE_DIM, SentenceEmbedder
from wanderlens.features.text import TextFeaturizer, text_expr
from wanderlens.io import StagedOutput, atomic_write_parquet, output_lock, staged_output, write_json

IMAGE_COLS = ("image_embedding", "image_tags", "image_error", "has_image")
TEXT_KEY = "__text_sha256"
SENTENCE_CACHE = "sentences_all_minilm_l6_v2"


def features_config(config: FeaturesConfig | WanderlensConfig | dict[str, Any] | None) -> FeaturesConfig:
    """The `features` section: given as is, taken from a whole config, or parsed from a mapping of sections."""
    if isinstance(config, FeaturesConfig):
        return config
    return parse_config(config).features


def build_pipeline(cfg: FeaturesConfig, image_dim: int) -> Pipeline:
    """The feature Pipeline (text first, so fitting IDF never runs the image encoder)."""
    return Pipeline(stages=[
        TextFeaturizer(numFeatures=cfg.num_features, minDocFreq=cfg.min_doc_freq),
        ImageEmbedder(inputCol="image_path", encoder=cfg.encoder, batchSize=cfg.batch_size,
                      imageSize=cfg.image_size, topK=cfg.top_k),
        SentenceEmbedder(batchSize=cfg.sentence_batch_size),
        ModalityFusion(inputCols=["image_embedding", "text_tfidf", "sentence_embedding"],
                       inputSizes=[image_dim, cfg.num_features, SENTENCE_DIM],
                       presenceCols=["has_image", "has_text"], outputCol="features"),
    ])


def read_photos(spark: SparkSession, photos_dir: str | Path) -> tuple[DataFrame, Path | None]:
    """The photos table from an ingest output folder (or the table folder itself), and its labels.json."""
    base = Path(str(photos_dir).removeprefix("file://"))
    table = base / "photos" if (base / "photos").is_dir() else base
    if not table.is_dir():
        raise InputError(f"photos table not found at {base}; pass the folder written by 'wanderlens ingest --out'")
    try:
        df = spark.read.parquet(str(table))
    except Exception as exc:
        raise InputError(f"cannot read the photos table at {table}: {exc}".split("\n")[0]) from exc
    if "image_path" not in df.columns:
        raise InputError(f"photos table {table} has no image_path column; rerun 'wanderlens ingest'")
    labels = table.parent / "labels.json"
    return df, labels if labels.is_file() else None


def _cache_key(cfg: FeaturesConfig) -> str:
    """Folder name of the image cache for these encoder settings (a user ONNX file also keys on its bytes)."""
    name = cfg.encoder
    ident = f"{name}|{cfg.image_size}|{cfg.top_k}"
    if name.startswith("onnx:"):
        with open(name[5:], "rb") as fh:
            ident += "|" + hashlib.file_digest(fh, "sha256").hexdigest()
    slug = "".join(c if c.isalnum() else "_" for c in name.split("/")[-1])[:40]
    return f"images_{slug}_{hashlib.sha1(ident.encode()).hexdigest()[:12]}"


def _compute_with_cache(spark: SparkSession, wanted: DataFrame, key: str, stage, cols: tuple[str, ...],
                        cache: Path, what: str, notify: Callable[[str], None]) -> tuple[DataFrame, int, int]:
    """Columns `cols` per distinct `key` from a cache table, running `stage` only on keys not cached yet.

    Returns (cache table, keys computed now, keys found in the cache).
    """
    old = spark.read.parquet(str(cache)) if cache.is_dir() else None
    todo = wanted.join(old.select(key), key, "left_anti") if old is not None else wanted
    todo = todo.cache()
    n_todo, n_wanted = todo.count(), wanted.count()
    if n_todo:
        notify(f"{what}: computing {n_todo} new ({n_wanted - n_todo} cached)")
        parts = max(spark.sparkContext.defaultParallelism, min(n_todo, math.ceil(n_todo / 256)))
        new = stage.transform(todo.repartition(parts)).select(key, *cols)
        atomic_write_parquet(new if old is None else old.unionByName(new), cache)
    else:
        notify(f"{what}: all {n_wanted} cached")
    todo.unpersist()
    return spark.read.parquet(str(cache)).dropDuplicates([key]), n_todo, n_wanted - n_todo


def _embed_images(spark: SparkSession, photos: DataFrame, image_stage: ImageEmbedder, cache: Path,
                  notify: Callable[[str], None]) -> tuple[DataFrame, int, int]:
    """Photos with the image columns, embedding only images whose content hash is not cached yet.

    Returns (photos with IMAGE_COLS, images computed now, images found in the cache).
    """
    if "sha256" not in photos.columns:
        notify("no sha256 column: embedding every image (no cache)")
        return image_stage.transform(photos), photos.count(), 0
    wanted = photos.where(F.col("sha256").isNotNull()).groupBy("sha256").agg(F.min("image_path").alias("image_path"))
    images, computed, cached = _compute_with_cache(spark, wanted, "sha256", image_stage, IMAGE_COLS, cache, "images",
                                                   notify)
    with_images = photos.join(images, "sha256", "left")
    # Rows without a hash (never from ingest) or missing from the cache: report them as not embedded.
    with_images = with_images.withColumn("has_image", F.coalesce(F.col("has_image"), F.lit(0.0)))
    return with_images.select(*photos.columns, *IMAGE_COLS), computed, cached


def _embed_sentences(spark: SparkSession, photos: DataFrame, rows: DataFrame, stage: SentenceEmbedder, cache: Path,
                     notify: Callable[[str], None]) -> tuple[DataFrame, int, int]:
    """`rows` with sentence embeddings, cached by a hash of the exact text MiniLM sees."""
    caption, tags = stage.getCaptionCol(), stage.getTagsCol()
    keyed = rows.withColumn(TEXT_KEY, F.sha2(F.trim(text_expr(photos, caption, tags)), 256))
    text_cols = [c for c in (caption, tags) if c in photos.columns]
    wanted = keyed.groupBy(TEXT_KEY).agg(*[F.first(c).alias(c) for c in text_cols])
    cols = (stage.getOutputCol(), stage.getOrDefault(stage.presenceCol))
    sentences, computed, cached = _compute_with_cache(spark, wanted, TEXT_KEY, stage, cols, cache, "sentences", notify)
    return keyed.join(sentences, TEXT_KEY, "left").drop(TEXT_KEY), computed, cached


def _save_outputs(features: DataFrame, model: PipelineModel, labels: Path | None, stage: StagedOutput) -> None:
    """features, feature_pipeline and labels.json into the staged output (committed together with the summary)."""
    features.write.mode("overwrite").parquet(str(stage.path("features")))
    model.write().overwrite().save(str(stage.path("feature_pipeline")))
    if labels is not None:
        shutil.copyfile(labels, stage.path("labels.json"))


def _summary(spark: SparkSession, table: Path, out: Path, cfg: FeaturesConfig, image_dim: int,
             counts: dict[str, int], t0: float) -> dict[str, Any]:
    """The run summary from the written features table and the computed/cached counts."""
    stats = spark.read.parquet(str(table)).agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col("has_image") == 0.0, 1).otherwise(0)).alias("image_errors"),
        F.sum(F.when(F.col("has_text") == 0.0, 1).otherwise(0)).alias("text_missing"),
    ).first()
    return {
        "rows": int(stats["rows"]),
        **{k: int(v) for k, v in counts.items()},
        "image_errors": int(stats["image_errors"] or 0),
        "text_missing": int(stats["text_missing"] or 0),
        "encoder": cfg.encoder,
        "image_dim": image_dim,
        "text_dim": cfg.num_features,
        "sentence_dim": SENTENCE_DIM,
        "features_dim": image_dim + cfg.num_features + SENTENCE_DIM + 2,
        "seconds": round(time.time() - t0, 1),
        "features": str(out / "features"),
        "feature_pipeline": str(out / "feature_pipeline"),
    }


def featurize(spark: SparkSession, photos_dir: str | Path, out_dir: str | Path,
              config: FeaturesConfig | WanderlensConfig | dict[str, Any] | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write OUT/features, OUT/feature_pipeline, OUT/labels.json and OUT/summary.json; return the summary.

    `config`: the `features` settings (a `FeaturesConfig`, a whole `WanderlensConfig`, or a mapping of sections).
    """
    notify = progress or (lambda _msg: None)
    t0 = time.time()
    cfg = features_config(config)
    out = Path(str(out_dir).removeprefix("file://")).resolve()
    photos, labels = read_photos(spark, photos_dir)
    if photos.isEmpty():
        raise InputError(f"the photos table at {photos_dir} has no rows; check the ingest summary (all quarantined?)")
    # One writer per output folder; the parts appear together (a killed run leaves the previous output).
    with output_lock(out, job="featurize"):
        image_dim = get_encoder(cfg.encoder, threads=1).dim
        pipeline = build_pipeline(cfg, image_dim)
        _, image_stage, sentence_stage, fusion_stage = pipeline.getStages()

        notify("fitting text features (TF-IDF)")
        model = pipeline.fit(photos)  # only TextFeaturizer is an Estimator; it sees the caption and tags only
        cache_root = Path(cfg.cache_dir or out / "cache")
        with_images, computed, cached = _embed_images(spark, photos, image_stage, cache_root / _cache_key(cfg),
                                                      notify)
        with_text, s_computed, s_cached = _embed_sentences(spark, photos, with_images, sentence_stage,
                                                           cache_root / SENTENCE_CACHE, notify)
        notify("text features and fusion")
        with staged_output(out) as stage:
            _save_outputs(fusion_stage.transform(model.stages[0].transform(with_text)), model, labels, stage)
            summary = _summary(spark, stage.path("features"), out, cfg, image_dim, {
                "images_computed": computed, "images_cached": cached,
                "sentences_computed": s_computed, "sentences_cached": s_cached}, t0)
            write_json(summary, stage.path("summary.json"))
        notify(f"wrote {summary['rows']} rows to {out / 'features'}")
    return summary
