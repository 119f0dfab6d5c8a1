"""Nearest training captions: for each photo, the captions of the most similar captioned photos in the fused
feature space, so a description can quote what people called photos like it.

`CaptionRetriever` (Estimator) keeps a bounded, sampled reference set of captioned photos; its model broadcasts that
set and scores photos in Arrow batches, never matching a photo with itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.errors import InputError
from wanderlens.travel.trips import require_columns


class _CaptionParams(Params):
    featuresCol = Param(Params._dummy(), "featuresCol", "vector column to compare photos in", TypeConverters.toString)
    captionCol = Param(Params._dummy(), "captionCol", "caption column", TypeConverters.toString)
    idCol = Param(Params._dummy(), "idCol", "photo id column (a photo never retrieves itself)",
                  TypeConverters.toString)
    outputCol = Param(Params._dummy(), "outputCol", "array<string> of nearest captions", TypeConverters.toString)
    k = Param(Params._dummy(), "k", "captions per photo", TypeConverters.toInt)
    maxReference = Param(Params._dummy(), "maxReference", "most captioned photos kept as reference (sampled)",
                         TypeConverters.toInt)
    seed = Param(Params._dummy(), "seed", "sampling seed", TypeConverters.toInt)

    def _init_defaults(self) -> None:
        self._setDefault(featuresCol="features", captionCol="caption", idCol="photo_id",
                         outputCol="nearest_captions", k=2, maxReference=20000, seed=0)


class CaptionRetriever(Estimator, _CaptionParams, MLReadable, MLWritable):
    """Collects the reference captions (photos with a non-empty caption) and their unit feature vectors."""

    @keyword_only
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self._init_defaults()
        self._set(**self._input_kwargs)

    def _fit(self, df: DataFrame) -> CaptionRetrieverModel:
        g = self.getOrDefault
        require_columns(df, [g("featuresCol"), g("captionCol"), g("idCol")], "CaptionRetriever")
        ref = df.where(F.length(F.trim(F.col(g("captionCol")))) > 0).where(F.col(g("featuresCol")).isNotNull())
        n = ref.count()
        if n == 0:
            raise InputError("CaptionRetriever: no photo has a caption; captions are needed as references")
        if n > g("maxReference"):
            ref = ref.sample(fraction=min(1.0, 1.2 * g("maxReference") / n), seed=g("seed")).limit(g("maxReference"))
        rows = ref.select(F.col(g("idCol")).cast("string").alias("id"), F.col(g("captionCol")).alias("caption"),
                          vector_to_array(g("featuresCol"), "float32").alias("v")).toPandas()
        mat = np.stack(rows["v"].to_numpy()).astype(np.float32)
        mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
        model = CaptionRetrieverModel(rows["id"].tolist(), rows["caption"].tolist(), mat)
        return self._copyValues(model)

    def write(self) -> MLWriter:
        return DefaultParamsWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return DefaultParamsReader(cls)


def nearest_captions(vectors: np.ndarray, ids: list[str], ref_ids: list[str], ref_captions: list[str],
                     ref_matrix: np.ndarray, k: int) -> list[list[str]]:
    """For each row of `vectors`, the k distinct captions of its nearest references (other than itself)."""
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    scores = v @ ref_matrix.T
    pos = {r: i for i, r in enumerate(ref_ids)}
    out = []
    for row, pid in enumerate(ids):
        if pid in pos:
            scores[row, pos[pid]] = -np.inf
        picked: list[str] = []
        for j in np.argsort(-scores[row], kind="stable")[: 4 * k + 1]:
            cap = ref_captions[j].strip()
            if np.isfinite(scores[row, j]) and cap.lower() not in {p.lower() for p in picked}:
                picked.append(cap)
            if len(picked) == k:
                break
        out.append(picked)
    return out


class CaptionRetrieverModel(Model, _CaptionParams, MLReadable, MLWritable):
    """Adds `nearest_captions` (array<string>) to every photo with a feature vector."""

    def __init__(self, ref_ids: list[str] | None = None, ref_captions: list[str] | None = None,
                 ref_matrix: np.ndarray | None = None) -> None:
        super().__init__()
        self._init_defaults()
        self.ref_ids, self.ref_captions, self.ref_matrix = ref_ids or [], ref_captions or [], ref_matrix

    def _transform(self, df: DataFrame) -> DataFrame:
        g = self.getOrDefault
        require_columns(df, [g("featuresCol"), g("idCol")], "CaptionRetrieverModel")
        bc = df.sparkSession.sparkContext.broadcast((self.ref_ids, self.ref_captions, self.ref_matrix))
        k = g("k")

        @F.pandas_udf("array<string>")
        def retrieve(vec: pd.Series, ids: pd.Series) -> pd.Series:
            ref_ids, ref_caps, mat = bc.value
            out = pd.Series([None] * len(vec), dtype=object)
            ok = vec.notna().to_numpy()
            if ok.any():
                v = np.stack(vec[ok].to_numpy()).astype(np.float32)
                res = nearest_captions(v, [str(x) for x in ids[ok]], ref_ids, ref_caps, mat, k)
                out[np.flatnonzero(ok)] = res
            return out

        return df.withColumn(g("outputCol"), retrieve(vector_to_array(g("featuresCol"), "float32"),
                                                      F.col(g("idCol")).cast("string")))

    def write(self) -> MLWriter:
        return _CaptionModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _CaptionModelReader(cls)


class _CaptionModelWriter(MLWriter):
    def __init__(self, instance: CaptionRetrieverModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession)
        data = Path(path) / "data"
        data.mkdir(parents=True, exist_ok=True)
        np.save(data / "matrix.npy", self.instance.ref_matrix)
        (data / "captions.json").write_text(json.dumps({"ids": self.instance.ref_ids,
                                                        "captions": self.instance.ref_captions}), encoding="utf-8")


class _CaptionModelReader(MLReader):
    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> CaptionRetrieverModel:
        meta = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        data = Path(path) / "data"
        refs = json.loads((data / "captions.json").read_text(encoding="utf-8"))
        model = CaptionRetrieverModel(refs["ids"], refs["captions"], np.load(data / "matrix.npy"))
        DefaultParamsReader.getAndSetParams(model, meta)
        return model
