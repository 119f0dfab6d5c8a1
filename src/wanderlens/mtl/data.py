"""From a DataFrame to training tensors: input checks, label encoding, Parquet shards, per-rank reading.

Everything bad about the input is found in one Spark aggregation before any training starts; the training rows
are then written once as Parquet shards, and each training process reads only its own shard files.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.ml.functions import vector_to_array
from pyspark.ml.linalg import VectorUDT
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from wanderlens.errors import InputError
from wanderlens.mtl.tasks import TaskSpec, label_index_expr

FEATURES = "__features"


def feature_array(df: DataFrame, cols: list[str], dtype: str = "float") -> Column:
    """One array<float> (or array<double>) from the feature columns, in order (vectors, numeric arrays or
    numeric scalars)."""
    parts = []
    for c in cols:
        if c not in df.columns:
            raise InputError(f"feature column {c!r} is missing; the DataFrame has {', '.join(df.columns)}")
        dt = df.schema[c].dataType
        if isinstance(dt, VectorUDT):
            parts.append(vector_to_array(F.col(c), "float32" if dtype == "float" else "float64"))
        elif isinstance(dt, T.ArrayType) and isinstance(dt.elementType, T.NumericType):
            parts.append(F.col(c).cast(f"array<{dtype}>"))
        elif isinstance(dt, T.NumericType):
            parts.append(F.array(F.col(c).cast(dtype)))
        else:
            raise InputError(
                f"feature column {c!r} has type {dt.simpleString()}; use a vector, numeric array or number"
            )
    return parts[0] if len(parts) == 1 else F.concat(*parts)


def infer_classes(df: DataFrame, tasks: list[TaskSpec], max_classes: int = 1000) -> list[TaskSpec]:
    """Fill in undeclared classes of multiclass/multilabel tasks from the distinct label values (sorted)."""
    out = []
    for t in tasks:
        if t.label_col not in df.columns:
            raise InputError(
                f"task {t.name!r}: label column {t.label_col!r} is missing; columns: {', '.join(df.columns)}"
            )
        if t.type in ("multiclass", "multilabel") and t.classes is None:
            col = F.col(t.label_col)
            values = df.select(F.explode(col) if t.type == "multilabel" else col).distinct().dropna()
            values = values.limit(max_classes + 1)
            classes = sorted(r[0] for r in values.collect())
            if len(classes) > max_classes:
                raise InputError(f"task {t.name!r}: more than {max_classes} distinct labels; declare its classes")
            if len(classes) < 2:
                raise InputError(f"task {t.name!r}: column {t.label_col!r} holds fewer than 2 classes {classes}; "
                                 "declare the classes or drop the task")
            t = TaskSpec(t.name, t.type, t.label_col, classes, t.weight)
        out.append(t)
    return out


@dataclass
class InputSummary:
    """What the validation pass learned: rows, input width, labelled rows and class counts per task."""

    rows: int
    input_dim: int
    labelled: dict[str, int]
    class_counts: dict[str, list[int]]


def _label_aggs(df: DataFrame, j: int, t: TaskSpec) -> list[Column]:
    """Aggregations checking task `t`'s label column (as `t{j}_*`): labelled rows, bad values, class counts."""
    if t.label_col not in df.columns:
        raise InputError(f"task {t.name!r}: label column {t.label_col!r} is missing; columns: {', '.join(df.columns)}")
    col = F.col(t.label_col)
    dt = df.schema[t.label_col].dataType
    if t.type in ("binary", "regression") and not isinstance(dt, T.NumericType | T.BooleanType):
        raise InputError(f"task {t.name!r} ({t.type}): label column {t.label_col!r} must be numeric, "
                         f"got {dt.simpleString()}")
    if t.type == "multilabel" and not isinstance(dt, T.ArrayType):
        raise InputError(f"task {t.name!r} (multilabel): label column {t.label_col!r} must be an array, "
                         f"got {dt.simpleString()}")
    idx = label_index_expr(df, t)
    if t.type == "binary":
        v = col.cast("double")
        bad = v.isNotNull() & ~v.isin(0.0, 1.0)
        counts = [F.sum(F.when(v == 1.0, 1).otherwise(0))]
    elif t.type == "regression":
        v = col.cast("double")
        bad = v.isNotNull() & (F.isnan(v) | (F.abs(v) == float("inf")))
        counts = []
    elif t.type == "multiclass":
        bad = idx.isNotNull() & F.isnan(idx)
        counts = [F.sum(F.when(idx == float(k), 1).otherwise(0)) for k in range(len(t.classes))]
    else:
        bad = idx.isNotNull() & F.exists(idx, lambda x: F.isnan(x))
        counts = [F.sum(F.when(F.array_contains(idx, float(k)), 1).otherwise(0)) for k in range(len(t.classes))]
    return [
        F.sum(F.when(col.isNotNull(), 1).otherwise(0)).alias(f"t{j}_n"),
        F.sum(F.when(bad, 1).otherwise(0)).alias(f"t{j}_bad"),
        F.first(F.when(bad, col.cast("string")), ignorenulls=True).alias(f"t{j}_example"),
        *[c.alias(f"t{j}_c{k}") for k, c in enumerate(counts)],
    ]


def validate_input(df: DataFrame, feature_cols: list[str], tasks: list[TaskSpec]) -> InputSummary:
    """Check features and labels in one pass; raise InputError naming the column and the fix on any problem."""
    aggs: list[Column] = [F.count(F.lit(1)).alias("rows")]
    for i, c in enumerate(feature_cols):
        arr = feature_array(df, [c])
        aggs += [
            F.sum(F.when(arr.isNull(), 1).otherwise(0)).alias(f"f{i}_null"),
            F.min(F.size(arr)).alias(f"f{i}_min"),
            F.max(F.size(arr)).alias(f"f{i}_max"),
            F.sum(F.when(F.exists(arr, lambda x: F.isnan(x) | (F.abs(x) == float("inf"))), 1).otherwise(0)).alias(
                f"f{i}_bad"
            ),
        ]
    for j, t in enumerate(tasks):
        aggs += _label_aggs(df, j, t)
    row = df.agg(*aggs).first().asDict()
    rows = int(row["rows"] or 0)
    if rows == 0:
        raise InputError("the training DataFrame has no rows")
    dim = 0
    for i, c in enumerate(feature_cols):
        if row[f"f{i}_null"]:
            raise InputError(f"feature column {c!r}: {row[f'f{i}_null']} rows have no value; fill or drop them")
        if row[f"f{i}_min"] != row[f"f{i}_max"]:
            raise InputError(f"feature column {c!r}: vectors have different lengths ({row[f'f{i}_min']} to "
                             f"{row[f'f{i}_max']}); every row needs the same length")
        if row[f"f{i}_bad"]:
            raise InputError(f"feature column {c!r}: {row[f'f{i}_bad']} rows hold NaN or infinite values; "
                             "clean or impute them before training")
        dim += int(row[f"f{i}_max"])
    labelled, class_counts = {}, {}
    for j, t in enumerate(tasks):
        if row[f"t{j}_bad"]:
            what = "not 0 or 1" if t.type == "binary" else (
                "NaN or infinite" if t.type == "regression" else f"outside the declared classes {t.classes}")
            raise InputError(f"task {t.name!r}: {row[f't{j}_bad']} labels in column {t.label_col!r} are {what} "
                             f"(e.g. {row[f't{j}_example']!r}); fix the data or the task's classes")
        n = int(row[f"t{j}_n"] or 0)
        if n == 0:
            raise InputError(f"task {t.name!r}: every label in column {t.label_col!r} is null; "
                             "nothing to learn, drop the task or supply labels")
        labelled[t.name] = n
        if t.type == "binary":
            pos = int(row[f"t{j}_c0"] or 0)
            class_counts[t.name] = [n - pos, pos]
        elif t.type in ("multiclass", "multilabel"):
            class_counts[t.name] = [int(row[f"t{j}_c{k}"] or 0) for k in range(len(t.classes))]
    return InputSummary(rows=rows, input_dim=dim, labelled=labelled, class_counts=class_counts)


def encode(df: DataFrame, feature_cols: list[str], tasks: list[TaskSpec]) -> DataFrame:
    """Training table: `__features` array<float> and one numeric label column per task (null = missing);
    rows with no label for any task are dropped (they would contribute nothing)."""
    cols = [feature_array(df, feature_cols).alias(FEATURES)]
    cols += [label_index_expr(df, t).alias(t.name) for t in tasks]
    out = df.select(*cols)
    any_label = None
    for t in tasks:
        cond = F.col(t.name).isNotNull()
        any_label = cond if any_label is None else (any_label | cond)
    return out.where(any_label)


def write_shards(df: DataFrame, path: str, num_shards: int, seed: int) -> None:
    """Write the training table as `num_shards` Parquet files (rows spread at random, so shards are alike)."""
    df.repartition(num_shards, F.rand(seed)).write.mode("overwrite").parquet(path)


def shard_files(path: str) -> list[str]:
    """Non-empty Parquet part files of a shard folder, sorted."""
    return sorted(f for f in glob.glob(os.path.join(path, "part-*.parquet")) if os.path.getsize(f) > 0)


@dataclass
class Shard:
    """One rank's rows as arrays: features [n, d] float32, and per task a target array and a 0/1 mask."""

    x: np.ndarray
    targets: list[np.ndarray]
    masks: list[np.ndarray]

    def __len__(self) -> int:
        return int(self.x.shape[0])


def _to_float(col: pa.ChunkedArray) -> np.ndarray:
    return col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


def table_to_shard(table: pa.Table, tasks: list[TaskSpec], input_dim: int) -> Shard:
    """Arrow table (as written by `encode`) to dense arrays; nulls become mask 0."""
    n = table.num_rows
    feats = table.column(FEATURES).combine_chunks()
    if n:
        x = np.array(feats.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(n, input_dim)
    else:
        x = np.zeros((0, input_dim), np.float32)
    targets, masks = [], []
    for t in tasks:
        col = table.column(t.name).combine_chunks()
        if t.type == "multilabel":
            k = len(t.classes)
            mask = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
            y = np.zeros((n, k), np.float32)
            offsets = np.asarray(col.offsets.to_numpy(), dtype=np.int64)
            values = np.asarray(col.values.to_numpy(zero_copy_only=False), dtype=np.int64)
            rows = np.repeat(np.arange(n), np.diff(offsets))
            y[rows, values[offsets[0]: offsets[-1]]] = 1.0
            y[~mask] = 0.0
        else:
            v = _to_float(col)
            mask = ~np.isnan(v)
            y = np.where(mask, v, 0.0)
            y = y.astype(np.int64) if t.type == "multiclass" else y.astype(np.float32)
        targets.append(y)
        masks.append(mask.astype(np.float32))
    return Shard(x=x, targets=targets, masks=masks)


def read_shard(path: str, rank: int, world: int, tasks: list[TaskSpec], input_dim: int) -> Shard:
    """Read this rank's files (every `world`-th part file); if there are fewer files than ranks, a row slice."""
    files = shard_files(path)
    if not files:
        return table_to_shard(pa.table({FEATURES: pa.array([], pa.list_(pa.float32())),
                                         **{t.name: pa.array([], pa.float64()) for t in tasks}}), tasks, input_dim)
    if len(files) >= world:
        table = pq.read_table(files[rank::world])
    else:
        table = pq.read_table(files)
        table = table.slice(rank * table.num_rows // world, (rank + 1) * table.num_rows // world
                            - rank * table.num_rows // world)
    return table_to_shard(table, tasks, input_dim)


def class_weights(tasks: list[TaskSpec], summary: InputSummary, mode: str) -> list[Any]:
    """Per-task class weights for the losses: None, or 'balanced' (inverse class frequency; pos/neg for logistic)."""
    out: list[Any] = []
    for t in tasks:
        c = summary.class_counts.get(t.name)
        if mode == "none" or c is None:
            out.append(None)
            continue
        c_arr = np.asarray(c, dtype=np.float64)
        if t.type == "binary":
            out.append([float(c_arr[0] / max(c_arr[1], 1.0))])
        elif t.type == "multiclass":
            out.append((c_arr.sum() / (len(c_arr) * np.maximum(c_arr, 1.0))).tolist())
        else:
            n = float(summary.labelled[t.name])
            out.append(((n - c_arr) / np.maximum(c_arr, 1.0)).tolist())
    return out
