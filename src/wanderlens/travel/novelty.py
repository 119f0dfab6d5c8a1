"""Out-of-distribution scores: how unlike the training photos a photo is, so descriptions know when they do not know.

A model trained on the synthetic sample's drawings, shown a real kitchen, still answers with confident scene and
attribute probabilities: a softmax has no "none of these". `NoveltyDetector` (Estimator) keeps a bounded sample of
the training photos' unit embeddings (the image embedding by default) as reference; a photo's `novelty` score is
its mean cosine distance to its k nearest references. The threshold is calibrated on training photos held out
from the reference: the `percentile` (99) of their scores, so about 1% of photos like the training ones are
flagged. `NoveltyModel` (a `DataStage`: references and threshold saved beside its Params, on any Hadoop path) adds
`novelty` and `is_novel`; `LocalNovelty` scores one photo without Spark for the REST service. The travel job fits
it on the labelled photos of the features table and saves it with the travel tables (`novelty`), so a registry
version carries it; the descriptions withhold the trained tasks' claims of a photo flagged novel.
"""

from __future__ import annotations

from pathlib import Path
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

from wanderlens.config import NoveltyConfig, TravelConfig
from wanderlens.errors import InputError
from wanderlens.persistence import DataStage
from wanderlens.travel.trips import require_columns


def _unit(mat: np.ndarray) -> np.ndarray:
    mat = np.asarray(mat, dtype=np.float32)
    return mat / np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)


def knn_distance(vectors: np.ndarray, reference: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Mean cosine distance (1 - cosine) of each row of `vectors` to its k nearest rows of unit `reference`."""
    v = _unit(vectors)
    k = max(1, min(int(k), len(reference)))
    out = np.empty(len(v), dtype=np.float64)
    for start in range(0, len(v), block):
        sims = v[start:start + block] @ reference.T
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        out[start:start + block] = 1.0 - top.mean(axis=1)
    return out


class _NoveltyParams(HasFeaturesCol, HasOutputCol, HasSeed):
    """Params shared by `NoveltyDetector` and `NoveltyModel`; defaults from `NoveltyConfig`."""

    novelCol = Param(Params._dummy(), "novelCol", "boolean column: score above the threshold",
                     TypeConverters.toString)
    k = Param(Params._dummy(), "k", "nearest reference photos averaged into the score", TypeConverters.toInt)
    percentile = Param(Params._dummy(), "percentile", "percentile of held-out training scores used as threshold",
                       TypeConverters.toFloat)
    heldOutFraction = Param(Params._dummy(), "heldOutFraction", "training photos held out to calibrate",
                            TypeConverters.toFloat)
    maxReference = Param(Params._dummy(), "maxReference", "most training photos kept as reference (sampled)",
                         TypeConverters.toInt)

    def __init__(self) -> None:
        super().__init__()
        cfg = NoveltyConfig()
        self._setDefault(featuresCol=cfg.features_col, outputCol="novelty", novelCol="is_novel", k=cfg.k,
                         percentile=cfg.percentile, heldOutFraction=cfg.held_out_fraction,
                         maxReference=cfg.max_reference, seed=TravelConfig().seed)


def novelty_params(cfg: NoveltyConfig, seed: int = 0) -> dict[str, Any]:
    """The NoveltyDetector Params a `travel.novelty` config sets."""
    return {"featuresCol": cfg.features_col, "k": cfg.k, "percentile": cfg.percentile,
            "heldOutFraction": cfg.held_out_fraction, "maxReference": cfg.max_reference, "seed": seed}


class NoveltyDetector(Estimator, _NoveltyParams, DefaultParamsReadable, DefaultParamsWritable):
    """Fits on training photos (a vector column `featuresCol`): keeps a sample as reference and calibrates the
    threshold on the held-out rest."""

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> NoveltyDetector:
        """Set any of the Params by name."""
        return self._set(**self._input_kwargs)

    def _fit(self, df: DataFrame) -> NoveltyModel:
        g = self.getOrDefault
        col = g(self.featuresCol)
        require_columns(df, [col], "NoveltyDetector")
        rows = df.where(F.col(col).isNotNull())
        n = rows.count()
        if n < 10:
            raise InputError(f"NoveltyDetector: {n} training photos with `{col}`; at least 10 are needed to "
                             "calibrate the novelty threshold (fit it on the training photos' features table)")
        held = g(self.heldOutFraction)
        want = int(min(n, g(self.maxReference) / (1.0 - held)))
        if want < n:
            rows = rows.sample(fraction=min(1.0, 1.2 * want / n), seed=g(self.seed)).limit(want)
        mat = rows.select(vector_to_array(col, "float32").alias("v")).toPandas()["v"]
        mat = _unit(np.stack(mat.to_numpy()))
        order = np.random.default_rng(g(self.seed)).permutation(len(mat))
        n_held = max(1, int(round(held * len(mat))))
        reference, held_out = mat[order[n_held:]], mat[order[:n_held]]
        scores = knn_distance(held_out, reference, g(self.k))
        threshold = float(np.percentile(scores, g(self.percentile)))
        return self._copyValues(NoveltyModel()._set_reference(reference, threshold, scores))


class NoveltyModel(Model, _NoveltyParams, DataStage):
    """Adds `novelty` (mean cosine distance to the k nearest training photos; null without a vector) and
    `is_novel` (score above the calibrated threshold). Data: the unit reference matrix, the threshold and the
    held-out calibration scores, saved beside the Params by `wanderlens.persistence`."""

    def __init__(self) -> None:
        super().__init__()
        self.reference: np.ndarray | None = None
        self.threshold: float = float("inf")
        self.calibration: np.ndarray | None = None

    def _set_reference(self, reference: np.ndarray, threshold: float, calibration: np.ndarray) -> NoveltyModel:
        self.reference, self.threshold = np.asarray(reference, dtype=np.float32), float(threshold)
        self.calibration = np.asarray(calibration, dtype=np.float64)
        return self

    def _stage_data(self) -> dict[str, Any]:
        return {"data": {"reference": self.reference, "threshold": self.threshold,
                         "calibration": self.calibration}}

    def _set_stage_data(self, data: dict[str, Any]) -> None:
        d = data["data"]
        self._set_reference(d["reference"], d["threshold"], d["calibration"])

    def score(self, vectors: np.ndarray) -> np.ndarray:
        """Novelty scores of the rows of `vectors` (no Spark)."""
        return knn_distance(np.atleast_2d(vectors), self.reference, self.getOrDefault(self.k))

    def _transform(self, df: DataFrame) -> DataFrame:
        g = self.getOrDefault
        col = g(self.featuresCol)
        require_columns(df, [col], "NoveltyModel")
        bc = df.sparkSession.sparkContext.broadcast(self.reference)
        k = g(self.k)

        @F.pandas_udf("double")
        def score(vec: pd.Series) -> pd.Series:
            out = pd.Series([None] * len(vec), dtype=object)
            ok = vec.notna().to_numpy()
            if ok.any():
                out[np.flatnonzero(ok)] = knn_distance(np.stack(vec[ok].to_numpy()), bc.value, k)
            return out.astype("float64")

        out = df.withColumn(g(self.outputCol), score(vector_to_array(col, "float32")))
        return out.withColumn(g(self.novelCol), F.coalesce(F.col(g(self.outputCol)) > F.lit(self.threshold),
                                                          F.lit(False)))


class LocalNovelty:
    """A saved `NoveltyModel` read without Spark (pyarrow): the REST service scores one photo with it."""

    def __init__(self, reference: np.ndarray, threshold: float, k: int, features_col: str) -> None:
        self.reference, self.threshold, self.k, self.features_col = reference, float(threshold), int(k), features_col

    @classmethod
    def load(cls, path: str | Path) -> LocalNovelty:
        from wanderlens.io import read_ml_metadata
        from wanderlens.persistence import read_record_local

        meta = read_ml_metadata(path)
        params = {**meta.get("defaultParamMap", {}), **meta.get("paramMap", {})}
        data = read_record_local(path)
        cfg = NoveltyConfig()
        return cls(np.asarray(data["reference"], dtype=np.float32), float(data["threshold"]),
                   int(params.get("k", cfg.k)), str(params.get("featuresCol", cfg.features_col)))

    def score(self, vector: Any) -> float | None:
        """The novelty score of one photo's vector (None without one)."""
        if vector is None:
            return None
        return float(knn_distance(np.asarray(vector, dtype=np.float32).reshape(1, -1), self.reference, self.k)[0])

    def is_novel(self, score: float | None) -> bool:
        return score is not None and score > self.threshold
