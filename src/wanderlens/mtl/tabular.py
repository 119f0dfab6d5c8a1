"""Tabular inputs of `wanderlens.mtl`: categorical columns as learned embeddings, numeric columns through numeric
feature embeddings (piecewise-linear encoding on quantile bins, or periodic; Gorishniy et al., NeurIPS 2022).

`fit` learns a *spec* once from the DataFrame (one Spark job for the vocabularies, one for the quantiles and
moments): per categorical column its most frequent values (index 0 is "unknown", also used for null), per numeric
column its quantile bin edges, mean, standard deviation and median (which fills nulls). The spec is stored in the
model's architecture (`arch["tabular"]`), so the saved model, `transform` and `LocalMultiTaskModel` all rebuild the
same input block.

The Spark side only *indexes*: `tabular_column` turns the columns into one array<double> (category indices, then raw
numeric values), appended after the dense `featuresCols`, so the training shards, the Arrow transform and the
local model keep one float matrix. The network's `TabularInput` embeds that part (embedding tables, piecewise-linear
or periodic encodings, each followed by Linear + ReLU per feature) and hands the concatenation to the experts.
Without Spark, `encode_frame(spec, pandas_df)` gives the same array for `LocalMultiTaskModel.predict`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T
from torch import nn

from wanderlens.errors import ConfigError, InputError
from wanderlens.mtl.architectures import MultiTaskNet

TABULAR = "__tabular"
MAX_CATEGORIES = 1000  # most frequent values kept per categorical column; rarer ones share the "unknown" index
NUMERIC_EMBEDDINGS = ("none", "piecewise", "periodic")


class HasTabularInputs(Params):
    """Params of the tabular input block (defaults from `ModelConfig`, set by the estimator)."""

    categoricalCols = Param(Params._dummy(), "categoricalCols", "categorical columns, each embedded with a learned "
                            "table (values unseen in fit share an 'unknown' row)",
                            typeConverter=TypeConverters.toListString)
    numericCols = Param(Params._dummy(), "numericCols", "numeric columns, each through a numeric feature embedding "
                        "(nulls take the training median)", typeConverter=TypeConverters.toListString)
    embeddingDim = Param(Params._dummy(), "embeddingDim", "width of each categorical and numeric embedding",
                         typeConverter=TypeConverters.toInt)
    numericEmbedding = Param(Params._dummy(), "numericEmbedding", "none (standardised value) | piecewise "
                             "(piecewise-linear on quantile bins) | periodic (sin/cos of learned frequencies)",
                             typeConverter=TypeConverters.toString)
    numericBins = Param(Params._dummy(), "numericBins", "quantile bins (piecewise) or frequencies (periodic) per "
                        "numeric column", typeConverter=TypeConverters.toInt)
    periodicSigma = Param(Params._dummy(), "periodicSigma", "standard deviation of the initial periodic frequencies",
                          typeConverter=TypeConverters.toFloat)

    def _has_tabular(self) -> bool:
        return bool(self.getOrDefault(self.categoricalCols) or self.getOrDefault(self.numericCols))

    def _input_cols(self) -> list[str]:
        """The columns concatenated into the network input: `featuresCols`, then the indexed tabular column."""
        cols = list(self.getOrDefault(self.featuresCols))  # type: ignore[attr-defined]
        if self._has_tabular():
            cols.append(TABULAR)
        if not cols:
            raise ConfigError(f"{type(self).__name__}: featuresCols is empty and there are no categoricalCols or "
                              "numericCols; name at least one input column")
        return cols

    def _fit_tabular(self, dataset: DataFrame, arch: dict[str, Any]) -> DataFrame:
        """Learn the tabular spec from `dataset` into `arch["tabular"]`; the dataset with the indexed column."""
        if not self._has_tabular():
            return dataset
        kind = self.getOrDefault(self.numericEmbedding)
        if kind not in NUMERIC_EMBEDDINGS:
            raise ConfigError(f"numericEmbedding {kind!r}: use one of {', '.join(NUMERIC_EMBEDDINGS)}")
        spec = learn_spec(dataset, self.getOrDefault(self.categoricalCols), self.getOrDefault(self.numericCols),
                          self.getOrDefault(self.numericBins))
        spec.update(embedding_dim=int(self.getOrDefault(self.embeddingDim)), numeric_embedding=kind,
                    periodic_sigma=float(self.getOrDefault(self.periodicSigma)))
        arch["tabular"] = spec
        return dataset.withColumn(TABULAR, tabular_column(dataset, spec))

    @staticmethod
    def _with_tabular(dataset: DataFrame, arch: dict[str, Any]) -> DataFrame:
        """`dataset` with the indexed tabular column of a fitted model (unchanged when it has none)."""
        spec = arch.get("tabular")
        return dataset.withColumn(TABULAR, tabular_column(dataset, spec)) if spec else dataset


# --- learning the spec (Spark) -------------------------------------------------------------------------------------
def _vocabularies(df: DataFrame, cols: list[str]) -> list[list[str]]:
    """Per column its values as strings, most frequent first (ties by value), at most MAX_CATEGORIES; one job."""
    if not cols:
        return []
    pairs = F.array(*[F.struct(F.lit(i).alias("i"), F.col(c).cast("string").alias("v")) for i, c in enumerate(cols)])
    counts = (df.select(F.explode(pairs).alias("s")).select("s.i", "s.v").where(F.col("v").isNotNull())
              .groupBy("i", "v").count().collect())
    out: list[list[tuple[int, str]]] = [[] for _ in cols]
    for r in counts:
        out[r["i"]].append((-int(r["count"]), r["v"]))
    vocab = []
    for c, values in zip(cols, out, strict=True):
        if not values:
            raise InputError(f"categorical column {c!r} holds only nulls; drop it from categoricalCols")
        vocab.append([v for _, v in sorted(values)[:MAX_CATEGORIES]])
    return vocab


def _numeric_stats(df: DataFrame, cols: list[str], bins: int) -> dict[str, list[Any]]:
    """Bin edges (`_bin_edges`), mean, standard deviation and median per numeric column."""
    for c in cols:
        if c not in df.columns:
            raise InputError(f"numeric column {c!r} is missing; the DataFrame has {', '.join(df.columns)}")
        if not isinstance(df.schema[c].dataType, T.NumericType | T.BooleanType):
            raise InputError(f"numeric column {c!r} has type {df.schema[c].dataType.simpleString()}; list it in "
                             "categoricalCols or cast it to a number")
    if not cols:
        return {"edges": [], "mean": [], "std": [], "median": []}
    clean = df.select(*[F.nanvl(F.col(c).cast("double"), F.lit(None)).alias(c) for c in cols])
    quantiles = clean.approxQuantile(cols, [*_probabilities(bins), 0.5], 1e-3)
    for c, q in zip(cols, quantiles, strict=True):
        if not q:
            raise InputError(f"numeric column {c!r} holds only nulls or NaN; drop it from numericCols")
    moments = clean.agg(*[F.mean(c).alias(f"m{i}") for i, c in enumerate(cols)],
                        *[F.stddev_pop(c).alias(f"s{i}") for i, c in enumerate(cols)]).first()
    edges = _bin_edges(clean, cols, [q[:-1] for q in quantiles], bins)
    means, stds, medians = [], [], []
    for i, q in enumerate(quantiles):
        medians.append(float(q[-1]))
        means.append(float(moments[f"m{i}"]))
        s = float(moments[f"s{i}"] or 0.0)
        stds.append(s if s > 0 else 1.0)
    return {"edges": edges, "mean": means, "std": stds, "median": medians}


def _probabilities(bins: int) -> list[float]:
    return [k / bins for k in range(bins + 1)]


def _bin_edges(clean: DataFrame, cols: list[str], quantiles: list[list[float]], bins: int) -> list[list[float]]:
    """Piecewise-linear bin edges per column: sorted, unique, at least two.

    Plain quantile edges collapse where many rows share one value. A column that is 0 in 96 % of its rows (capital
    gains) would get the edges [0, max]: one linear piece over every value that matters. A value that takes several
    quantiles is therefore an edge of its own, and the column's bins are spent again on quantiles of its other
    values (one more pass over the columns that need it, with those values set to null, which approxQuantile skips).
    """
    masses = [{v for v in q if q.count(v) > 1} for q in quantiles]
    edges = [set(q) for q in quantiles]
    redo = [i for i, m in enumerate(masses) if m]
    if redo:
        rest = clean.select(*[F.when(~F.col(cols[i]).isin(sorted(masses[i])), F.col(cols[i])).alias(cols[i])
                              for i in redo])
        for i, q in zip(redo, rest.approxQuantile([cols[i] for i in redo], _probabilities(bins), 1e-3), strict=True):
            edges[i] |= set(q)  # empty when the column holds nothing but those values
    out = []
    for e in edges:
        e = sorted(e)
        out.append(e if len(e) > 1 else [e[0], e[0] + 1.0])
    return out


def learn_spec(df: DataFrame, categorical: list[str], numeric: list[str], bins: int) -> dict[str, Any]:
    """Vocabularies and numeric statistics of the tabular columns (the embedding sizes are added by the caller)."""
    for c in categorical:
        if c not in df.columns:
            raise InputError(f"categorical column {c!r} is missing; the DataFrame has {', '.join(df.columns)}")
    if bins < 1:
        raise ConfigError(f"numericBins must be >= 1, got {bins}")
    return {"categorical": list(categorical), "vocab": _vocabularies(df, list(categorical)), "bins": int(bins),
            "numeric": list(numeric), **_numeric_stats(df, list(numeric), bins)}


# --- applying the spec ---------------------------------------------------------------------------------------------
def tabular_column(df: DataFrame, spec: dict[str, Any]) -> Column:
    """array<double>: each categorical column's index (1-based in its vocabulary, 0 unknown or null), then each
    numeric column's value (null or NaN: the training median)."""
    parts: list[Column] = []
    for c, vocab in zip(spec["categorical"], spec["vocab"], strict=True):
        if c not in df.columns:
            raise InputError(f"categorical column {c!r} is missing from the DataFrame")
        values = F.array(*[F.lit(v) for v in vocab])
        parts.append(F.coalesce(F.array_position(values, F.col(c).cast("string")), F.lit(0)).cast("double"))
    for c, fill in zip(spec["numeric"], spec["median"], strict=True):
        if c not in df.columns:
            raise InputError(f"numeric column {c!r} is missing from the DataFrame")
        v = F.col(c).cast("double")
        parts.append(F.coalesce(F.nanvl(v, F.lit(None).cast("double")), F.lit(float(fill))))
    return F.array(*parts)


def encode_frame(spec: dict[str, Any], frame: pd.DataFrame) -> np.ndarray:
    """The same array as `tabular_column`, from a pandas DataFrame (for `LocalMultiTaskModel.predict`)."""
    cols = []
    for c, vocab in zip(spec["categorical"], spec["vocab"], strict=True):
        index = {v: i + 1 for i, v in enumerate(vocab)}
        cols.append(np.array([0.0 if v is None or (isinstance(v, float) and math.isnan(v))
                              else float(index.get(str(v), 0)) for v in frame[c]], dtype=np.float64))
    for c, fill in zip(spec["numeric"], spec["median"], strict=True):
        v = pd.to_numeric(frame[c], errors="coerce").to_numpy(np.float64)
        cols.append(np.where(np.isnan(v), float(fill), v))
    return np.stack(cols, axis=1) if cols else np.zeros((len(frame), 0))


def tabular_width(spec: dict[str, Any]) -> int:
    """Columns the indexed tabular block adds to the network input."""
    return len(spec["categorical"]) + len(spec["numeric"])


# --- the network's input block (torch) -----------------------------------------------------------------------------
class PiecewiseLinear(nn.Module):
    """Piecewise-linear encoding of one feature on its bin edges, then Linear + ReLU (Gorishniy et al.'s PLE-LR)."""

    def __init__(self, edges: list[float], dim: int) -> None:
        super().__init__()
        e = torch.tensor(edges, dtype=torch.float32)
        n = len(edges) - 1
        self.register_buffer("left", e[:-1], persistent=False)
        self.register_buffer("width", (e[1:] - e[:-1]).clamp(min=1e-9), persistent=False)
        lo, hi = torch.zeros(n), torch.ones(n)
        lo[0], hi[-1] = -math.inf, math.inf  # below the first / above the last edge extrapolates linearly
        self.register_buffer("lo", lo, persistent=False)
        self.register_buffer("hi", hi, persistent=False)
        self.linear = nn.Linear(n, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc = torch.clamp((x.unsqueeze(1) - self.left) / self.width, min=self.lo, max=self.hi)
        return torch.relu(self.linear(enc))


class Periodic(nn.Module):
    """sin/cos of learned frequencies of one standardised feature, then Linear + ReLU (Gorishniy et al.'s PLR)."""

    def __init__(self, k: int, sigma: float, dim: int) -> None:
        super().__init__()
        self.freq = nn.Parameter(torch.randn(k) * sigma)
        self.linear = nn.Linear(2 * k, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = 2 * math.pi * x.unsqueeze(1) * self.freq
        return torch.relu(self.linear(torch.cat([torch.cos(v), torch.sin(v)], dim=1)))


class TabularInput(nn.Module):
    """Dense features pass through; category indices are embedded; numeric values are embedded per feature."""

    def __init__(self, spec: dict[str, Any], dense_dim: int) -> None:
        super().__init__()
        d, kind = int(spec["embedding_dim"]), spec["numeric_embedding"]
        self.dense, self.n_cat, self.kind = int(dense_dim), len(spec["categorical"]), kind
        self.cats = nn.ModuleList(nn.Embedding(len(v) + 1, d) for v in spec["vocab"])
        self.register_buffer("mean", torch.tensor(spec["mean"], dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(spec["std"], dtype=torch.float32), persistent=False)
        if kind == "piecewise":
            self.nums = nn.ModuleList(PiecewiseLinear(e, d) for e in spec["edges"])
        elif kind == "periodic":
            k, sigma = int(spec["bins"]), float(spec["periodic_sigma"])
            self.nums = nn.ModuleList(Periodic(k, sigma, d) for _ in spec["numeric"])
        else:
            self.nums = nn.ModuleList()
        n_num = len(spec["numeric"])
        self.out_dim = self.dense + self.n_cat * d + n_num * (1 if kind == "none" else d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = [x[:, : self.dense]] if self.dense else []
        idx = x[:, self.dense: self.dense + self.n_cat].long()
        parts += [emb(idx[:, i]) for i, emb in enumerate(self.cats)]
        z = x[:, self.dense + self.n_cat:]
        if self.kind == "none":
            parts.append((z - self.mean) / self.std)
        elif self.kind == "piecewise":
            parts += [m(z[:, j]) for j, m in enumerate(self.nums)]
        else:
            zs = (z - self.mean) / self.std
            parts += [m(zs[:, j]) for j, m in enumerate(self.nums)]
        return torch.cat(parts, dim=1)


class TabularNet(MultiTaskNet):
    """`TabularInput` then the configured multi-task network (`single_task`: one input block per task, so nothing
    is shared between tasks)."""

    def __init__(self, arch: dict[str, Any], in_dim: int, outs: list[int]) -> None:
        super().__init__()
        from wanderlens.mtl.architectures import build_network

        spec = arch["tabular"]
        body_cfg = {k: v for k, v in arch.items() if k != "tabular"}
        dense = int(in_dim) - tabular_width(spec)
        if dense < 0:
            raise InputError(f"network input width {in_dim} is smaller than the tabular block "
                             f"({tabular_width(spec)} columns)")
        groups = [[o] for o in outs] if body_cfg["name"] == "single_task" else [list(outs)]
        self.inputs = nn.ModuleList(TabularInput(spec, dense) for _ in groups)
        self.bodies = nn.ModuleList(build_network(body_cfg, inp.out_dim, g)
                                    for inp, g in zip(self.inputs, groups, strict=True))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [o for inp, body in zip(self.inputs, self.bodies, strict=True) for o in body(inp(x))]

    def shared_parameters(self) -> list[nn.Parameter]:
        return [p for body in self.bodies for p in body.shared_parameters()]


__all__ = ["HasTabularInputs", "TABULAR", "TabularInput", "TabularNet", "encode_frame", "learn_spec",
           "tabular_column"]
