"""`ModalityFusion`: per-modality L2 normalisation, concatenation and modality-presence indicators.

A missing modality (null vector) becomes a zero block, and the presence columns are appended, so downstream models
can learn with a modality missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.linalg import DenseVector, SparseVector, Vector, VectorUDT
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCols, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.errors import InputError


def fuse_arrays(blocks: list[np.ndarray | None], sizes: list[int], presence: list[float]) -> np.ndarray:
    """Dense fused vector: each block L2-normalised (zeros when missing or all-zero), then the presence values."""
    parts = []
    for block, size in zip(blocks, sizes, strict=True):
        if block is None:
            parts.append(np.zeros(size))
            continue
        block = np.asarray(block, dtype=np.float64)
        if block.shape[0] != size:
            raise InputError(f"ModalityFusion: a block has {block.shape[0]} values, expected {size}")
        norm = np.linalg.norm(block)
        parts.append(block / norm if norm > 0 else np.zeros(size))
    parts.append(np.asarray(presence, dtype=np.float64))
    return np.concatenate(parts)


def _fuse_row(sizes: list[int], *values) -> Vector:
    n = len(sizes)
    blocks = [None if v is None else v.toArray() for v in values[:n]]
    presence = [0.0 if p is None else float(p) for p in values[n:]]
    dense = fuse_arrays(blocks, sizes, presence)
    nz = np.flatnonzero(dense)
    if 12 * nz.size + 20 < 8 * dense.size:  # sparse storage is smaller
        return SparseVector(dense.size, nz, dense[nz])
    return DenseVector(dense)


class ModalityFusion(Transformer, HasInputCols, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Vector columns (one per modality) + presence columns -> one fused feature vector."""

    inputSizes = Param(Params._dummy(), "inputSizes", "size of each input vector (a null becomes that many zeros)",
                       typeConverter=TypeConverters.toListInt)
    presenceCols = Param(Params._dummy(), "presenceCols", "0/1 columns appended as modality-presence indicators",
                         typeConverter=TypeConverters.toListString)

    @keyword_only
    def __init__(self, *, inputCols: list[str] | None = None, inputSizes: list[int] | None = None,
                 presenceCols: list[str] | None = None, outputCol: str = "features") -> None:
        super().__init__()
        self._setDefault(outputCol="features", presenceCols=[])
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        cols, sizes = self.getInputCols(), self.getOrDefault(self.inputSizes)
        presence = self.getOrDefault(self.presenceCols)
        if len(cols) != len(sizes):
            raise InputError(f"ModalityFusion: {len(cols)} inputCols but {len(sizes)} inputSizes")
        missing = [c for c in cols + presence if c not in dataset.columns]
        if missing:
            raise InputError(f"ModalityFusion: columns {missing} not found (columns: {dataset.columns})")
        sizes = list(sizes)
        fuse = F.udf(lambda *v: _fuse_row(sizes, *v), VectorUDT())
        args = [F.col(c) for c in cols] + [F.col(c).cast("double") for c in presence]
        return dataset.withColumn(self.getOutputCol(), fuse(*args))

    def input_sizes(self) -> dict[str, int]:
        """Block size of each input column."""
        return dict(zip(self.getInputCols(), self.getOrDefault(self.inputSizes), strict=True))

    def modality_blocks(self, modalities: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> list[list[int]]:
        """Where each modality sits in the fused vector, as `[start, stop, presence index or -1]` triples (the
        multi-task model's `modalityBlocks`, used by modality dropout).

        `modalities`: name -> (its input columns, its presence columns). Neighbouring inputs of one modality form
        one block; its first presence column (appended after the blocks) is the block's flag. Inputs of no
        modality form no block."""
        cols, sizes = self.getInputCols(), self.getOrDefault(self.inputSizes)
        presence = list(self.getOrDefault(self.presenceCols))
        owner = {c: name for name, (inputs, _) in modalities.items() for c in inputs}
        blocks: list[list[int]] = []
        start, last = 0, None
        for col, size in zip(cols, sizes, strict=True):
            name = owner.get(col)
            if name is not None and name == last:
                blocks[-1][1] = start + size
            elif name is not None:
                flags = [presence.index(p) for p in modalities[name][1] if p in presence]
                blocks.append([start, start + size, sum(sizes) + flags[0] if flags else -1])
            start, last = start + size, name
        return blocks


def fitted_fusion(features_dir: str | Path) -> ModalityFusion | None:
    """The fitted ModalityFusion stage of the feature pipeline a `featurize` run saved (None when it has none)."""
    stages = sorted((Path(features_dir) / "feature_pipeline" / "stages").glob("*ModalityFusion*"))
    return ModalityFusion.load(str(stages[0])) if stages else None
