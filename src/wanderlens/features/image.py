"""`ImageEmbedder`: a Spark ML Transformer turning image paths into embeddings and top-k ImageNet labels.

Images are read and decoded on the executors, in Arrow batches, with the encoder loaded once per Python worker.
A file that cannot be read or decoded gives a null embedding and an `image_error`; the job never fails for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.features.encoders import DEFAULT_ENCODER, get_encoder, imagenet_labels
from wanderlens.features.preprocess import load_and_preprocess

TAGS_TYPE = T.ArrayType(T.StructType([T.StructField("label", T.StringType()), T.StructField("prob", T.DoubleType())]))
_UDF_TYPE = T.StructType(
    [
        T.StructField("embedding", T.ArrayType(T.FloatType())),
        T.StructField("labels", T.ArrayType(T.StringType())),
        T.StructField("probs", T.ArrayType(T.DoubleType())),
        T.StructField("error", T.StringType()),
    ]
)


def read_image_bytes(path: str) -> bytes:
    """Read an image given as a local path or `file://` URI."""
    if path.startswith("file://"):
        path = path[len("file://"):]
    elif "://" in path:
        raise OSError(f"unsupported URI scheme in {path!r}; use a local path or file:// URI")
    return Path(path).read_bytes()


def embed_images(
    payloads: list[bytes | str | None], encoder: str, image_size: int, top_k: int, batch_size: int
) -> tuple[list[np.ndarray | None], list[list[tuple[str, float]] | None], list[str | None]]:
    """Embed images given as bytes or paths: (embeddings, top-k tags, errors), one entry per input, in order.

    Shared by the Spark UDF and the single-photo service path so both give identical numbers.
    """
    enc = get_encoder(encoder)
    size = image_size or enc.input_size
    labels = imagenet_labels() if (enc.has_labels and top_k > 0) else None
    n = len(payloads)
    embs: list[np.ndarray | None] = [None] * n
    tags: list[list[tuple[str, float]] | None] = [None] * n
    errors: list[str | None] = [None] * n
    for start in range(0, n, max(1, batch_size)):
        idx, arrays = [], []
        for i in range(start, min(n, start + batch_size)):
            item = payloads[i]
            try:
                if item is None:
                    raise ValueError("no image path")
                data = read_image_bytes(item) if isinstance(item, str) else item
                arrays.append(load_and_preprocess(data, size, enc.normalize))
                idx.append(i)
            except Exception as exc:  # noqa: BLE001 - one bad image must not fail the batch
                errors[i] = f"{type(exc).__name__}: {exc}"[:500]
        if not arrays:
            continue
        emb, probs = enc.run(np.stack(arrays))
        for row, i in enumerate(idx):
            vec = emb[row]
            if not np.all(np.isfinite(vec)):
                errors[i] = "encoder produced non-finite values"
                continue
            embs[i] = vec
            if labels is not None and probs is not None:
                top = np.argsort(-probs[row], kind="stable")[:top_k]
                tags[i] = [(labels[j], float(probs[row, j])) for j in top]
    return embs, tags, errors


class ImageEmbedder(Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Image path column -> embedding vector, top-k ImageNet labels, decode error and presence flag."""

    encoder = Param(Params._dummy(), "encoder", "efficientnet_lite0 | torch | color_texture | onnx:<path>",
                    typeConverter=TypeConverters.toString)
    batchSize = Param(Params._dummy(), "batchSize", "images per encoder call", typeConverter=TypeConverters.toInt)
    imageSize = Param(Params._dummy(), "imageSize", "model input side in pixels; 0 = the encoder's own",
                      typeConverter=TypeConverters.toInt)
    topK = Param(Params._dummy(), "topK", "ImageNet labels kept per image (0 = none)",
                 typeConverter=TypeConverters.toInt)
    tagsCol = Param(Params._dummy(), "tagsCol", "output column of top-k labels", typeConverter=TypeConverters.toString)
    errorCol = Param(Params._dummy(), "errorCol", "output column of decode errors",
                     typeConverter=TypeConverters.toString)
    presenceCol = Param(Params._dummy(), "presenceCol", "output column: 1.0 when an embedding was made, else 0.0",
                        typeConverter=TypeConverters.toString)
    numPartitions = Param(Params._dummy(), "numPartitions",
                          "repartition the input to this many partitions before embedding (0 = leave as is)",
                          typeConverter=TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, inputCol: str = "image_path", outputCol: str = "image_embedding",
                 encoder: str = DEFAULT_ENCODER, batchSize: int = 64, imageSize: int = 0, topK: int = 5,
                 tagsCol: str = "image_tags", errorCol: str = "image_error", presenceCol: str = "has_image",
                 numPartitions: int = 0) -> None:
        super().__init__()
        self._setDefault(inputCol="image_path", outputCol="image_embedding", encoder=DEFAULT_ENCODER, batchSize=64,
                         imageSize=0, topK=5, tagsCol="image_tags", errorCol="image_error", presenceCol="has_image",
                         numPartitions=0)
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs) -> ImageEmbedder:
        """Set any of the constructor's params."""
        return self._set(**kwargs)

    def getEncoder(self) -> str:
        return self.getOrDefault(self.encoder)

    def getBatchSize(self) -> int:
        return self.getOrDefault(self.batchSize)

    def getImageSize(self) -> int:
        return self.getOrDefault(self.imageSize)

    def getTopK(self) -> int:
        return self.getOrDefault(self.topK)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        in_col = self.getInputCol()
        if in_col not in dataset.columns:
            from wanderlens.errors import InputError

            raise InputError(f"ImageEmbedder: input column {in_col!r} not found (columns: {dataset.columns})")
        encoder, size, top_k, batch = self.getEncoder(), self.getImageSize(), self.getTopK(), self.getBatchSize()
        get_encoder(encoder, threads=1)  # fail fast on the driver for an unknown encoder or a missing file

        @F.pandas_udf(_UDF_TYPE)
        def embed(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
            for paths in batches:
                embs, tags, errors = embed_images(list(paths.where(paths.notna(), None)), encoder, size, top_k,
                                                  batch)
                yield pd.DataFrame({
                    "embedding": [None if e is None else e.astype(np.float32) for e in embs],
                    "labels": [None if t is None else [lab for lab, _ in t] for t in tags],
                    "probs": [None if t is None else [p for _, p in t] for t in tags],
                    "error": errors,
                })

        parts = self.getOrDefault(self.numPartitions)
        df = dataset.repartition(parts) if parts > 0 else dataset
        tmp = f"__{self.uid}_out"
        df = df.withColumn(tmp, embed(F.col(in_col).cast("string")))
        tags_expr = F.when(
            F.col(f"{tmp}.labels").isNotNull(),
            F.arrays_zip(F.col(f"{tmp}.labels").alias("label"), F.col(f"{tmp}.probs").alias("prob")),
        ).cast(TAGS_TYPE)
        emb = F.col(f"{tmp}.embedding")
        return (
            df.withColumn(self.getOutputCol(), F.when(emb.isNotNull(), array_to_vector(emb)))
            .withColumn(self.getOrDefault(self.tagsCol), tags_expr)
            .withColumn(self.getOrDefault(self.errorCol), F.col(f"{tmp}.error"))
            .withColumn(self.getOrDefault(self.presenceCol), F.when(emb.isNotNull(), 1.0).otherwise(0.0))
            .drop(tmp)
        )
