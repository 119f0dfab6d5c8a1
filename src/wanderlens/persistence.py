"""Saving and loading Spark ML stages that carry data beside their Params, on any Hadoop file system.

A stage's Params go to `path/metadata` exactly as pyspark.ml writes them (`DefaultParamsWriter.saveMetadata`), so
`PipelineModel.load`, `DefaultParamsReader.loadMetadata` and `wanderlens.io.read_ml_metadata` read them. Its data go
beside them, one entry per name, every byte written and read through Spark (so `hdfs://`, `s3a://`, `file:` paths
all work; nothing is written with Python file I/O):

- a **record** (a dict of str, bytes, int, float, bool, list of str or numbers, numpy array): a one-row Parquet table
  at `path/<name>`; numpy arrays are stored as `.npy` bytes (dtype and shape kept);
- a **table** (a DataFrame): Parquet at `path/<name>`, read back lazily;
- a **stage** (any saveable pyspark.ml stage, Python or JVM, e.g. an `ALSModel`): its own writer at `path/<name>`,
  read back with `DefaultParamsReader.loadParamsInstance`.

Which name is which kind is written into the metadata (`stageData`), so the reader needs nothing else. A stage opts
in by inheriting `DataStage` and implementing `_stage_data()` (what to save) and `_set_stage_data(data)` (what was
loaded); it must be constructible with no arguments, as every pyspark.ml stage is:

    class MyModel(Model, HasOutputCol, DataStage):
        def _stage_data(self):             return {"data": {"weight": self.weight, "names": self.names}}
        def _set_stage_data(self, data):   self.weight, self.names = data["data"]["weight"], data["data"]["names"]

    MyModel().write().overwrite().save("hdfs:///models/m"); MyModel.load("hdfs:///models/m")
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
from pyspark.ml.param import Params
from pyspark.ml.util import DefaultParamsReader, DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

# Metadata key naming each data entry's kind; a save without it (older MultiTaskModel folders) holds one record `data`.
LAYOUT_KEY = "stageData"
_LEGACY_LAYOUT = {"data": {"kind": "record", "arrays": []}}


def array_to_bytes(array: np.ndarray) -> bytes:
    """A numpy array as `.npy` bytes (dtype and shape kept, no pickle)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def array_from_bytes(data: bytes | bytearray) -> np.ndarray:
    """The numpy array of `.npy` bytes written by `array_to_bytes`."""
    return np.load(io.BytesIO(bytes(data)), allow_pickle=False)


def _field_type(name: str, value: Any) -> T.DataType:
    """The Spark type a record value is stored as."""
    if isinstance(value, str):
        return T.StringType()
    if isinstance(value, bytes | bytearray | np.ndarray):
        return T.BinaryType()
    if isinstance(value, bool | np.bool_):
        return T.BooleanType()
    if isinstance(value, int | np.integer):
        return T.LongType()
    if isinstance(value, float | np.floating):
        return T.DoubleType()
    if isinstance(value, list | tuple):
        if all(isinstance(v, str) for v in value):
            return T.ArrayType(T.StringType())
        if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in value):
            return T.ArrayType(T.DoubleType())
    raise TypeError(f"record field {name!r}: cannot store a {type(value).__name__} (use str, bytes, int, float, "
                    "bool, a list of str or numbers, or a numpy array)")


def _record_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return bytearray(array_to_bytes(value))
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [v.item() if isinstance(v, np.generic) else (float(v) if isinstance(v, int) else v) for v in value]
    return value


def write_record(spark: SparkSession, record: dict[str, Any], path: str) -> None:
    """Write a dict as a one-row Parquet table at `path` (numpy arrays as `.npy` bytes)."""
    fields = [T.StructField(k, _field_type(k, v), nullable=False) for k, v in record.items()]
    row = tuple(_record_value(v) for v in record.values())
    spark.createDataFrame([row], T.StructType(fields)).coalesce(1).write.mode("overwrite").parquet(path)


def _decode_record(row: dict[str, Any], arrays: list[str]) -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if k in arrays:
            out[k] = array_from_bytes(v)
        elif isinstance(v, bytearray):
            out[k] = bytes(v)
        else:
            out[k] = v
    return out


def read_record(spark: SparkSession, path: str, arrays: list[str] | None = None) -> dict[str, Any]:
    """The dict `write_record` wrote at `path` (numpy arrays decoded for the names in `arrays`)."""
    return _decode_record(spark.read.parquet(path).first().asDict(), list(arrays or []))


def read_record_local(stage_dir: str | Path, name: str = "data") -> dict[str, Any]:
    """A saved stage's record read without Spark (pyarrow, local paths): for the no-Spark serving paths."""
    import pyarrow.parquet as pq

    from wanderlens.io import read_ml_metadata

    entry = read_ml_metadata(stage_dir).get(LAYOUT_KEY, _LEGACY_LAYOUT).get(name, {})
    folder = Path(str(stage_dir).removeprefix("file://")) / name
    return _decode_record(pq.read_table(str(folder)).to_pylist()[0], list(entry.get("arrays", [])))


def _layout_entry(name: str, value: Any) -> dict[str, Any]:
    """How one data entry is saved: {"kind": "table" | "stage" | "record"[, "arrays": numpy-array fields]}."""
    if isinstance(value, DataFrame):
        return {"kind": "table"}
    if isinstance(value, Params) and isinstance(value, MLWritable):
        return {"kind": "stage"}
    if isinstance(value, dict):
        return {"kind": "record", "arrays": [k for k, v in value.items() if isinstance(v, np.ndarray)]}
    raise TypeError(f"stage data {name!r}: cannot save a {type(value).__name__} (use a dict record, a DataFrame or "
                    "a saveable pyspark.ml stage)")


def _save_entry(spark: SparkSession, kind: str, value: Any, path: str) -> None:
    if kind == "table":
        value.write.mode("overwrite").parquet(path)
    elif kind == "stage":
        value.write().session(spark).save(path)
    else:
        write_record(spark, value, path)


def _load_entry(spark: SparkSession, entry: dict[str, Any], path: str) -> Any:
    kind = entry.get("kind")
    if kind == "table":
        return spark.read.parquet(path)
    if kind == "stage":
        return DefaultParamsReader.loadParamsInstance(path, spark)
    if kind == "record":
        return read_record(spark, path, entry.get("arrays"))
    raise ValueError(f"{path}: unknown stage data kind {kind!r} in the saved metadata")


class StageDataWriter(MLWriter):
    """Writes a `DataStage`: Params as pyspark.ml metadata, each data entry through Spark beside it."""

    def __init__(self, instance: DataStage) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        spark = self.sparkSession
        data = self.instance._stage_data()
        layout = {name: _layout_entry(name, value) for name, value in data.items()}
        # Metadata first: it fails on an existing folder unless overwrite() was asked for, before any data is written.
        DefaultParamsWriter.saveMetadata(self.instance, path, spark, extraMetadata={LAYOUT_KEY: layout})
        for name, value in data.items():
            _save_entry(spark, layout[name]["kind"], value, os.path.join(path, name))


class StageDataReader(MLReader):
    """Reads what `StageDataWriter` wrote: a new instance of `cls` with its Params, uid and data."""

    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> Any:
        spark = self.sparkSession
        metadata = DefaultParamsReader.loadMetadata(path, spark)
        instance = self.cls()
        instance._resetUid(metadata["uid"])
        DefaultParamsReader.getAndSetParams(instance, metadata)
        layout = metadata.get(LAYOUT_KEY, _LEGACY_LAYOUT)
        instance._set_stage_data({name: _load_entry(spark, entry, os.path.join(path, name))
                                  for name, entry in layout.items()})
        return instance


class DataStage(MLReadable, MLWritable):
    """Mixin: pyspark.ml persistence for a stage with data (see the module docstring)."""

    def _stage_data(self) -> dict[str, Any]:
        """{name: record dict | DataFrame | pyspark.ml stage}: what to save beside the Params."""
        raise NotImplementedError

    def _set_stage_data(self, data: dict[str, Any]) -> None:
        """Take back what `_stage_data` returned (records as dicts, tables as DataFrames, stages loaded)."""
        raise NotImplementedError

    def write(self) -> MLWriter:
        return StageDataWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return StageDataReader(cls)


__all__ = ["DataStage", "StageDataReader", "StageDataWriter", "array_from_bytes", "array_to_bytes", "read_record",
           "read_record_local", "write_record"]
