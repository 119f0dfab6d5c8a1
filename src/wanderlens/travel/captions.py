"""Nearest training captions: for each photo, the captions of the most similar captioned photos in the fused
feature space, so a description can quote what people called photos like it.

`CaptionRetriever` (Estimator) keeps a bounded, sampled reference set of captioned photos; its model broadcasts that
set and scores photos in Arrow batches, never matching a photo with itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasFeaturesCol, HasOutputCol, HasSeed
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.config import TravelConfig
from wanderlens.errors import InputError
from wanderlens.persistence import DataStage
from wanderlens.travel.trips import require_columns


class _CaptionParams(HasFeaturesCol, HasOutputCol, HasSeed):
    """Params shared by `CaptionRetriever` and its model; defaults from `TravelConfig`."""

    captionCol = Param(Params._dummy(), "captionCol", "caption column", TypeConverters.toString)
    idCol = Param(Params._dummy(), "idCol", "photo id column (a photo never retrieves itself)",
                  TypeConverters.toString)
    k = Param(Params._dummy(), "k", "captions per photo", TypeConverters.toInt)
    maxReference = Param(Params._dummy(), "maxReference", "most captioned photos kept as reference (sampled)",
                         TypeConverters.toInt)

    def __init__(self) -> None:
        super().__init__()
        travel = TravelConfig()
        self._setDefault(featuresCol="features", captionCol="caption", idCol="photo_id",
                         outputCol="nearest_captions", k=travel.captions_per_photo, maxReference=20000,
                         seed=travel.seed)


class CaptionRetriever(Estimator, _CaptionParams, DefaultParamsReadable, DefaultParamsWritable):
    """Collects the reference captions (photos with a non-empty caption) and their unit feature vectors."""

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> CaptionRetriever:
        """Set any of the Params by name."""
        return self._set(**self._input_kwargs)

    def _fit(self, df: DataFrame) -> CaptionRetrieverModel:
        g = self.getOrDefault
        features, caption, id_col = g(self.featuresCol), g(self.captionCol), g(self.idCol)
        require_columns(df, [features, caption, id_col], "CaptionRetriever")
        ref = df.where(F.length(F.trim(F.col(caption))) > 0).where(F.col(features).isNotNull())
        n = ref.count()
        if n == 0:
            raise InputError("CaptionRetriever: no photo has a caption; captions are needed as references")
        max_ref = g(self.maxReference)
        if n > max_ref:
            ref = ref.sample(fraction=min(1.0, 1.2 * max_ref / n), seed=g(self.seed)).limit(max_ref)
        rows = ref.select(F.col(id_col).cast("string").alias("id"), F.col(caption).alias("caption"),
                          vector_to_array(features, "float32").alias("v")).toPandas()
        mat = np.stack(rows["v"].to_numpy()).astype(np.float32)
        mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
        model = CaptionRetrieverModel()._set_references(rows["id"].tolist(), rows["caption"].tolist(), mat)
        return self._copyValues(model)


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


class CaptionRetrieverModel(Model, _CaptionParams, DataStage):
    """Adds `nearest_captions` (array<string>) to every photo with a feature vector.

    Its data (reference ids, captions and unit vectors) are saved beside its Params by `wanderlens.persistence`."""

    def __init__(self) -> None:
        super().__init__()
        self.ref_ids: list[str] = []
        self.ref_captions: list[str] = []
        self.ref_matrix: np.ndarray | None = None

    def _set_references(self, ids: list[str], captions: list[str], matrix: np.ndarray) -> CaptionRetrieverModel:
        self.ref_ids, self.ref_captions, self.ref_matrix = list(ids), list(captions), matrix
        return self

    def _stage_data(self) -> dict[str, Any]:
        return {"data": {"ids": self.ref_ids, "captions": self.ref_captions, "matrix": self.ref_matrix}}

    def _set_stage_data(self, data: dict[str, Any]) -> None:
        refs = data["data"]
        self._set_references(refs["ids"], refs["captions"], refs["matrix"])

    def _transform(self, df: DataFrame) -> DataFrame:
        g = self.getOrDefault
        features, id_col = g(self.featuresCol), g(self.idCol)
        require_columns(df, [features, id_col], "CaptionRetrieverModel")
        bc = df.sparkSession.sparkContext.broadcast((self.ref_ids, self.ref_captions, self.ref_matrix))
        k = g(self.k)

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

        return df.withColumn(g(self.outputCol), retrieve(vector_to_array(features, "float32"),
                                                         F.col(id_col).cast("string")))
