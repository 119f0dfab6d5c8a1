"""Text-to-photo search in a space where text and images meet.

`JointSpaceProjection` learns a linear map from image embeddings into the MiniLM sentence space from caption-photo
pairs (ridge start, then a symmetric contrastive loss in torch), so a photo without a caption gets a point in the
sentence space too. A query is embedded by the features stage's sentence encoder and compared by cosine.
`search_index` / `search_top_k` run the search as a Spark job; `SearchIndex` loads a written index for the REST
service (no Spark).
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
from pyspark.ml.param.shared import HasOutputCol, HasSeed
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.config import TravelConfig
from wanderlens.errors import InputError
from wanderlens.persistence import DataStage
from wanderlens.travel.trips import require_columns


class _JointParams(HasOutputCol, HasSeed):
    """Params shared by `JointSpaceProjection` and its model; defaults from `TravelConfig`."""

    imageCol = Param(Params._dummy(), "imageCol", "image embedding column (vector)", TypeConverters.toString)
    textCol = Param(Params._dummy(), "textCol", "sentence embedding column (vector)", TypeConverters.toString)
    hasTextCol = Param(Params._dummy(), "hasTextCol", "1.0 when the photo has text", TypeConverters.toString)
    captionWeight = Param(Params._dummy(), "captionWeight",
                          "share of a photo's own caption embedding in its joint embedding (0: image only)",
                          TypeConverters.toFloat)
    epochs = Param(Params._dummy(), "epochs", "contrastive training steps over the pairs", TypeConverters.toInt)
    learningRate = Param(Params._dummy(), "learningRate", "AdamW learning rate", TypeConverters.toFloat)
    temperature = Param(Params._dummy(), "temperature", "softmax temperature of the contrastive loss",
                        TypeConverters.toFloat)
    ridge = Param(Params._dummy(), "ridge", "L2 strength of the ridge start and weight decay", TypeConverters.toFloat)
    maxPairs = Param(Params._dummy(), "maxPairs", "most caption-photo pairs used to fit (sampled)",
                     TypeConverters.toInt)

    def __init__(self) -> None:
        super().__init__()
        travel = TravelConfig()
        self._setDefault(imageCol="image_embedding", textCol="sentence_embedding", hasTextCol="has_text",
                         outputCol="joint_embedding", captionWeight=travel.caption_weight,
                         epochs=travel.projection_epochs, learningRate=0.003, temperature=0.05, ridge=1.0,
                         maxPairs=20000, seed=travel.seed)


def _l2(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def fit_projection(img: np.ndarray, txt: np.ndarray, epochs: int = 150, lr: float = 0.003,
                   temperature: float = 0.05, ridge: float = 1.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Learn W, b so that l2(l2(img) @ W + b) lies near l2(txt): ridge regression start, contrastive refinement."""
    import torch

    x, y = _l2(img.astype(np.float64)), _l2(txt.astype(np.float64))
    mu = x.mean(axis=0)
    xc = x - mu
    w0 = np.linalg.solve(xc.T @ xc + ridge * np.eye(x.shape[1]), xc.T @ (y - y.mean(axis=0)))
    b0 = y.mean(axis=0) - mu @ w0
    if epochs <= 0 or len(x) < 4:
        return w0.astype(np.float32), b0.astype(np.float32)
    torch.manual_seed(seed)
    W = torch.nn.Parameter(torch.tensor(w0, dtype=torch.float32))
    b = torch.nn.Parameter(torch.tensor(b0, dtype=torch.float32))
    X, Y = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    opt = torch.optim.AdamW([W, b], lr=lr, weight_decay=ridge * 1e-3)
    batch = min(256, len(x))
    gen = torch.Generator().manual_seed(seed)
    # Identical captions are not negatives of each other.
    _, text_id = np.unique(np.round(y, 5), axis=0, return_inverse=True)
    tid = torch.tensor(text_id.ravel())
    for _ in range(epochs):
        idx = torch.randperm(len(x), generator=gen)[:batch]
        zi = torch.nn.functional.normalize(X[idx] @ W + b, dim=1)
        logits = zi @ Y[idx].T / temperature
        same = tid[idx][:, None] == tid[idx][None, :]
        eye = torch.eye(len(idx), dtype=torch.bool)
        logits = logits.masked_fill(same & ~eye, -1e4)
        target = torch.arange(len(idx))
        loss = (torch.nn.functional.cross_entropy(logits, target)
                + torch.nn.functional.cross_entropy(logits.T, target)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
    return W.detach().numpy(), b.detach().numpy()


def project_images(img: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Image embeddings (n x d) -> unit vectors in the sentence space (n x 384)."""
    return _l2(_l2(img.astype(np.float32)) @ W + b).astype(np.float32)


def joint_vectors(img: np.ndarray | None, txt: np.ndarray | None, has_text: np.ndarray | None, W: np.ndarray,
                  b: np.ndarray, caption_weight: float) -> np.ndarray:
    """Joint embedding of photos: projected image, blended with the photo's own caption embedding when it has one."""
    z = project_images(img, W, b)
    if txt is not None and caption_weight > 0:
        t = _l2(txt.astype(np.float32))
        m = (np.asarray(has_text, dtype=np.float32) > 0)[:, None] & (np.linalg.norm(txt, axis=1) > 0)[:, None]
        z = np.where(m, _l2((1 - caption_weight) * z + caption_weight * t), z)
    return z.astype(np.float32)


class JointSpaceProjection(Estimator, _JointParams, DefaultParamsReadable, DefaultParamsWritable):
    """Fits the image-to-sentence-space projection on the photos that have both an image and a caption."""

    @keyword_only
    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    @keyword_only
    def setParams(self, **kwargs: Any) -> JointSpaceProjection:
        """Set any of the Params by name."""
        return self._set(**self._input_kwargs)

    def _fit(self, df: DataFrame) -> JointSpaceModel:
        g = self.getOrDefault
        image, text, has_text = g(self.imageCol), g(self.textCol), g(self.hasTextCol)
        require_columns(df, [image, text, has_text], "JointSpaceProjection")
        pairs = df.where((F.col(has_text) > 0) & F.col(image).isNotNull())
        n = pairs.count()
        if n < 8:
            raise InputError(f"JointSpaceProjection needs at least 8 photos with a caption and an image; found {n}. "
                             "Add captions to some photos (the manifest's caption column).")
        max_pairs, seed = g(self.maxPairs), g(self.seed)
        if n > max_pairs:
            pairs = pairs.sample(fraction=min(1.0, 1.2 * max_pairs / n), seed=seed).limit(max_pairs)
        rows = pairs.select(vector_to_array(image, "float32").alias("i"),
                            vector_to_array(text, "float32").alias("t")).toPandas()
        img, txt = np.stack(rows["i"].to_numpy()), np.stack(rows["t"].to_numpy())
        W, b = fit_projection(img, txt, g(self.epochs), g(self.learningRate), g(self.temperature), g(self.ridge),
                              seed)
        return self._copyValues(JointSpaceModel()._set_projection(W, b))


class JointSpaceModel(Model, _JointParams, DataStage):
    """Adds `joint_embedding` (array<float>, unit length, sentence space) to every photo with an image embedding.

    Its data (the projection `weight` and `bias`) are saved beside its Params by `wanderlens.persistence`."""

    def __init__(self) -> None:
        super().__init__()
        self.weight: np.ndarray | None = None
        self.bias: np.ndarray | None = None

    def _set_projection(self, weight: np.ndarray, bias: np.ndarray) -> JointSpaceModel:
        self.weight, self.bias = weight, bias
        return self

    def _stage_data(self) -> dict[str, Any]:
        return {"data": {"weight": self.weight, "bias": self.bias}}

    def _set_stage_data(self, data: dict[str, Any]) -> None:
        self._set_projection(data["data"]["weight"], data["data"]["bias"])

    def _transform(self, df: DataFrame) -> DataFrame:
        g = self.getOrDefault
        image, text, has_text_col = g(self.imageCol), g(self.textCol), g(self.hasTextCol)
        require_columns(df, [image], "JointSpaceModel")
        W, b, cw = self.weight, self.bias, float(g(self.captionWeight))
        has_text = text in df.columns and has_text_col in df.columns

        @F.pandas_udf("array<float>")
        def project(img: pd.Series, txt: pd.Series, has: pd.Series) -> pd.Series:
            ok = img.notna().to_numpy()
            out = pd.Series([None] * len(img), dtype=object)
            if ok.any():
                i = np.stack(img[ok].to_numpy())
                t = np.stack([v if v is not None else np.zeros(W.shape[1], np.float32) for v in txt[ok]])
                z = joint_vectors(i, t, has[ok].fillna(0).to_numpy(), W, b, cw)
                out[np.flatnonzero(ok)] = list(z)
            return out

        txt = vector_to_array(text, "float32") if has_text else F.lit(None).cast("array<float>")
        has = F.col(has_text_col).cast("double") if has_text else F.lit(0.0)
        return df.withColumn(g(self.outputCol), project(vector_to_array(image, "float32"), txt, has))


def search_top_k(index: DataFrame, query_vector: np.ndarray, k: int = 10, embedding_col: str = "joint_embedding",
                 ) -> DataFrame:
    """The k photos of `index` nearest to a query vector (cosine), as a Spark job; adds `score`."""
    q = _l2(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
    qlit = F.array(*[F.lit(float(v)) for v in q])
    dot = F.aggregate(F.zip_with(F.col(embedding_col), qlit, lambda a, c: a.cast("double") * c), F.lit(0.0),
                      lambda s, v: s + v)
    return index.where(F.col(embedding_col).isNotNull()).withColumn("score", dot).orderBy(
        F.desc("score"), "photo_id").limit(k)


class SearchIndex:
    """A written search index held in memory (numpy) for one-query-at-a-time serving without Spark."""

    def __init__(self, table: pd.DataFrame, embedding_col: str = "joint_embedding") -> None:
        table = table[table[embedding_col].notna()].reset_index(drop=True)
        self.meta = table.drop(columns=[embedding_col])
        self.matrix = _l2(np.stack(table[embedding_col].to_numpy()).astype(np.float32)) if len(table) else \
            np.zeros((0, 384), np.float32)

    @classmethod
    def load(cls, path: str | Path) -> SearchIndex:
        """Read a search index Parquet folder written by `run_travel`."""
        import pyarrow.parquet as pq

        p = Path(path)
        if not p.exists():
            raise InputError(f"search index not found at {p}; run `wanderlens travel` (or the demo) first")
        return cls(pq.read_table(p).to_pandas())

    def search(self, query_vector: np.ndarray, k: int = 10) -> list[dict]:
        """Top-k photos as dicts (photo_id, caption, ..., score), best first."""
        if not len(self.matrix):
            return []
        q = _l2(np.asarray(query_vector, dtype=np.float32).reshape(1, -1))[0]
        scores = self.matrix @ q
        top = np.argsort(-scores, kind="stable")[:k]
        rows = self.meta.iloc[top].to_dict(orient="records")
        for r, s in zip(rows, scores[top], strict=True):
            r["score"] = float(s)
        return rows


def recall_at_k(index_vectors: np.ndarray, query_vectors: np.ndarray, targets: np.ndarray, k: int = 10) -> float:
    """Share of queries whose target row of the index is among the k nearest (cosine)."""
    if len(query_vectors) == 0:
        return float("nan")
    scores = _l2(query_vectors.astype(np.float32)) @ _l2(index_vectors.astype(np.float32)).T
    target_scores = scores[np.arange(len(targets)), targets]
    rank = (scores > target_scores[:, None]).sum(axis=1)
    return float((rank < k).mean())
