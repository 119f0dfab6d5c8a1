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
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from wanderlens.errors import ConfigError, InputError
from wanderlens.features.encoders import DEFAULT_ENCODER, get_encoder
from wanderlens.features.fusion import ModalityFusion
from wanderlens.features.image import ImageEmbedder
from wanderlens.features.sentence import SENTENCE_DIM, SentenceEmbedder
from wanderlens.features.text import TextFeaturizer, text_expr
from wanderlens.io import atomic_write_parquet, read_json, replace_dir, write_json

DEFAULTS: dict[str, Any] = {
    "encoder": DEFAULT_ENCODER,
    "batch_size": 64,
    "image_size": 0,
    "top_k": 5,
    "num_features": 4096,
    "min_doc_freq": 1,
    "cache_dir": None,  # default: OUT/cache
}
IMAGE_COLS = ("image_embedding", "image_tags", "image_error", "has_image")
TEXT_KEY = "__text_sha256"
SENTENCE_CACHE = "sentences_all_minilm_l6_v2"


def feature_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """Featurize settings: the `features` section of a wanderlens config (or a flat dict) over the defaults."""
    cfg = dict(config or {})
    section = cfg.get("features", cfg)
    if not isinstance(section, dict):
        raise ConfigError("config section 'features' must be a mapping")
    unknown = sorted(set(section) - set(DEFAULTS)) if "features" in cfg else []
    if unknown:
        raise ConfigError(f"features: unknown keys {unknown}; known: {sorted(DEFAULTS)}")
    out = dict(DEFAULTS)
    out.update({k: v for k, v in section.items() if k in DEFAULTS})
    return out


def build_pipeline(cfg: dict[str, Any], image_dim: int) -> Pipeline:
    """The feature Pipeline (text first, so fitting IDF never runs the image encoder)."""
    return Pipeline(stages=[
        TextFeaturizer(numFeatures=int(cfg["num_features"]), minDocFreq=int(cfg["min_doc_freq"])),
        ImageEmbedder(inputCol="image_path", encoder=cfg["encoder"], batchSize=int(cfg["batch_size"]),
                      imageSize=int(cfg["image_size"]), topK=int(cfg["top_k"])),
        SentenceEmbedder(batchSize=int(cfg["batch_size"])),
        ModalityFusion(inputCols=["image_embedding", "text_tfidf", "sentence_embedding"],
                       inputSizes=[image_dim, int(cfg["num_features"]), SENTENCE_DIM],
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
    except Exception as exc:  # noqa: BLE001 - Spark's AnalysisException
        raise InputError(f"cannot read the photos table at {table}: {exc}".split("\n")[0]) from exc
    if "image_path" not in df.columns:
        raise InputError(f"photos table {table} has no image_path column; rerun 'wanderlens ingest'")
    labels = table.parent / "labels.json"
    return df, labels if labels.is_file() else None


def _cache_key(cfg: dict[str, Any]) -> str:
    """Folder name of the image cache for these encoder settings (a user ONNX file also keys on its bytes)."""
    name = cfg["encoder"]
    ident = f"{name}|{cfg['image_size']}|{cfg['top_k']}"
    if name.startswith("onnx:"):
        ident += "|" + hashlib.sha256(Path(name[5:]).read_bytes()).hexdigest()
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


def featurize(spark: SparkSession, photos_dir: str | Path, out_dir: str | Path,
              config: dict[str, Any] | None = None,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write OUT/features, OUT/feature_pipeline, OUT/labels.json and OUT/summary.json; return the summary."""
    notify = progress or (lambda _msg: None)
    t0 = time.time()
    cfg = feature_config(config)
    out = Path(str(out_dir).removeprefix("file://")).resolve()
    photos, labels = read_photos(spark, photos_dir)
    if photos.isEmpty():
        raise InputError(f"the photos table at {photos_dir} has no rows; check the ingest summary (all quarantined?)")
    image_dim = get_encoder(cfg["encoder"], threads=1).dim
    pipeline = build_pipeline(cfg, image_dim)
    text_stage, image_stage, sentence_stage, fusion_stage = pipeline.getStages()

    notify("fitting text features (TF-IDF)")
    model = pipeline.fit(photos)  # only TextFeaturizer is an Estimator; it sees the caption and tags only
    text_model = model.stages[0]

    cache_root = Path(cfg["cache_dir"] or out / "cache")
    if "sha256" in photos.columns:
        wanted = photos.where(F.col("sha256").isNotNull()).groupBy("sha256").agg(
            F.min("image_path").alias("image_path"))
        images, computed, cached = _compute_with_cache(spark, wanted, "sha256", image_stage, IMAGE_COLS,
                                                       cache_root / _cache_key(cfg), "images", notify)
        with_images = photos.join(images, "sha256", "left")
        # Rows without a hash (never from ingest) or missing from the cache: report them as not embedded.
        with_images = with_images.withColumn(
            "has_image", F.coalesce(F.col("has_image"), F.lit(0.0))
        ).select(*photos.columns, *IMAGE_COLS)
    else:
        notify("no sha256 column: embedding every image (no cache)")
        computed, cached = photos.count(), 0
        with_images = image_stage.transform(photos)

    # Sentence embeddings, cached by a hash of the exact text MiniLM sees.
    text_key = F.sha2(F.trim(text_expr(photos, sentence_stage.getCaptionCol(), sentence_stage.getTagsCol())), 256)
    keyed = with_images.withColumn(TEXT_KEY, text_key)
    text_cols = [c for c in (sentence_stage.getCaptionCol(), sentence_stage.getTagsCol()) if c in photos.columns]
    wanted_text = keyed.groupBy(TEXT_KEY).agg(*[F.first(c).alias(c) for c in text_cols])
    sent_cols = (sentence_stage.getOutputCol(), sentence_stage.getOrDefault(sentence_stage.presenceCol))
    sentences, s_computed, s_cached = _compute_with_cache(spark, wanted_text, TEXT_KEY, sentence_stage, sent_cols,
                                                          cache_root / SENTENCE_CACHE, "sentences", notify)
    with_text = keyed.join(sentences, TEXT_KEY, "left").drop(TEXT_KEY)

    notify("text features and fusion")
    features = fusion_stage.transform(text_model.transform(with_text))
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(features, out / "features")

    tmp = out / f".feature_pipeline.tmp-{uuid.uuid4().hex[:8]}"
    model.write().overwrite().save(str(tmp))
    replace_dir(tmp, out / "feature_pipeline")
    if labels is not None:
        shutil.copyfile(labels, out / "labels.json")

    table = spark.read.parquet(str(out / "features"))
    stats = table.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col("has_image") == 0.0, 1).otherwise(0)).alias("image_errors"),
        F.sum(F.when(F.col("has_text") == 0.0, 1).otherwise(0)).alias("text_missing"),
    ).first()
    summary = {
        "rows": int(stats["rows"]),
        "images_computed": int(computed),
        "images_cached": int(cached),
        "sentences_computed": int(s_computed),
        "sentences_cached": int(s_cached),
        "image_errors": int(stats["image_errors"] or 0),
        "text_missing": int(stats["text_missing"] or 0),
        "encoder": cfg["encoder"],
        "image_dim": image_dim,
        "text_dim": int(cfg["num_features"]),
        "sentence_dim": SENTENCE_DIM,
        "features_dim": image_dim + int(cfg["num_features"]) + SENTENCE_DIM + 2,
        "seconds": round(time.time() - t0, 1),
        "features": str(out / "features"),
        "feature_pipeline": str(out / "feature_pipeline"),
    }
    write_json(summary, out / "summary.json")
    notify(f"wrote {summary['rows']} rows to {out / 'features'}")
    return summary


def load_feature_pipeline(path: str | Path) -> PipelineModel:
    """Load a saved feature pipeline (OUT/feature_pipeline)."""
    p = Path(str(path))
    if not (p / "metadata").is_dir():
        raise InputError(f"no saved feature pipeline at {p}; run 'wanderlens featurize' first")
    return PipelineModel.load(str(p))


def read_summary(out_dir: str | Path) -> dict[str, Any]:
    """The summary.json written by `featurize`."""
    return read_json(Path(out_dir) / "summary.json")
