"""Seeded train/validation/test splits, by photo or by user, as a persisted Spark ML Transformer.

Assignment hashes the id with the seed, so it depends only on (seed, id): the same photo lands in the same split
whatever the partitioning or row order. Splitting by user keeps all of a user's photos on one side, which prevents
leakage into per-user (recommendation) evaluation; the user split cuts the users themselves at the fractions. Any
other column can be the unit too (e.g. a trip id): rows sharing its value stay on one side.

An official split: with `splitCol` set, the data's own train / validation / test column is used as it is (values
case-insensitive; val, valid, dev also mean validation), so benchmark datasets with published splits are evaluated
on them. A row with any other value, or none, is an error naming the column, the values and their row counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from wanderlens.errors import ConfigError, InputError
from wanderlens.io import write_json

SPLITS = ("train", "validation", "test")
# Accepted spellings in an official split column (after trimming and lower-casing).
SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "val": "validation",
                 "valid": "validation", "dev": "validation", "test": "test", "testing": "test"}
_BUCKETS = 1_000_000


class DataSplitter(Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """Adds a `split` column (train / validation / test) from a seeded hash of the photo id, the user id or another
    grouping column, or from the data's own split column (`splitCol`)."""

    by = Param(Params._dummy(), "by", "split unit: 'photo', 'user' or a column whose rows stay together",
               typeConverter=TypeConverters.toString)
    seed = Param(Params._dummy(), "seed", "seed of the assignment hash", typeConverter=TypeConverters.toInt)
    fractions = Param(Params._dummy(), "fractions", "train, validation, test fractions (sum to 1)",
                      typeConverter=TypeConverters.toListFloat)
    photoCol = Param(Params._dummy(), "photoCol", "photo id column", typeConverter=TypeConverters.toString)
    userCol = Param(Params._dummy(), "userCol", "user id column", typeConverter=TypeConverters.toString)
    outputCol = Param(Params._dummy(), "outputCol", "output column", typeConverter=TypeConverters.toString)
    splitCol = Param(Params._dummy(), "splitCol", "an official train/validation/test column of the data, used "
                     "instead of the hash (empty: none)", typeConverter=TypeConverters.toString)

    @keyword_only
    def __init__(self, *, by: str = "photo", seed: int = 0, fractions: list[float] | None = None,
                 photoCol: str = "photo_id", userCol: str = "user_id", outputCol: str = "split",
                 splitCol: str = "") -> None:
        super().__init__()
        self._setDefault(by="photo", seed=0, fractions=[0.7, 0.15, 0.15], photoCol="photo_id", userCol="user_id",
                         outputCol="split", splitCol="")
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    def _validated(self) -> tuple[str, list[float]]:
        by = self.getOrDefault(self.by)
        if not by:
            raise ConfigError("split 'by' is empty; use 'photo', 'user' or a column name")
        fr = [float(x) for x in self.getOrDefault(self.fractions)]
        if len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1.0) > 1e-6 or fr[0] == 0 or fr[2] == 0:
            raise ConfigError(f"split fractions {fr}: give three non-negative numbers (train, validation, test) "
                              "summing to 1, with train and test above 0")
        return by, fr

    def _transform(self, dataset: DataFrame) -> DataFrame:
        if self.getOrDefault(self.splitCol):
            return official_split(dataset, self.getOrDefault(self.splitCol), self.getOrDefault(self.outputCol))
        by, (f_train, f_val, _) = self._validated()
        key = {"photo": self.getOrDefault(self.photoCol), "user": self.getOrDefault(self.userCol)}.get(by, by)
        if key not in dataset.columns:
            raise InputError(f"cannot split by {by}: column {key!r} missing (columns: {', '.join(dataset.columns)})")
        out = self.getOrDefault(self.outputCol)
        seed = str(self.getOrDefault(self.seed))
        if by == "photo":
            return dataset.withColumn(out, _label(u_of(key, seed), f_train, f_train + f_val))
        # By user (or group): rank the distinct keys by their hash and cut the ranking, so fractions are of keys.
        users = dataset.select(F.col(key).alias("_wl_key")).distinct().withColumn("_wl_u", u_of("_wl_key", seed))
        ranked = users.withColumn("_wl_r", F.percent_rank().over(Window.orderBy("_wl_u", "_wl_key")))
        n_users = ranked.count()
        # percent_rank is (rank-1)/(n-1); shift to (rank-0.5)/n so the cut takes round(fraction * n) users.
        pos = (F.col("_wl_r") * F.lit(max(n_users - 1, 1)) + F.lit(0.5)) / F.lit(max(n_users, 1))
        assign = ranked.select("_wl_key", _label(pos, f_train, f_train + f_val).alias(out))
        return dataset.join(F.broadcast(assign), dataset[key] == assign["_wl_key"], "left").drop("_wl_key")


def official_split(dataset: DataFrame, column: str, out: str = "split") -> DataFrame:
    """`out` = the data's own split column, normalised to train / validation / test; every row must have one.

    Checked eagerly (one aggregation): a null or unknown value is an error with the value and its row count, never
    a silently dropped row.
    """
    if column not in dataset.columns:
        raise InputError(f"evaluation.split.column: column {column!r} is not in the data (columns: "
                         f"{', '.join(dataset.columns)}); name the train/validation/test column or remove the key")
    norm = F.lower(F.trim(F.col(column).cast("string")))
    mapping = F.create_map(*[F.lit(x) for kv in SPLIT_ALIASES.items() for x in kv])
    labelled = dataset.withColumn("_wl_split", mapping[norm])
    unusable = labelled.where(F.col("_wl_split").isNull())
    bad = (unusable.groupBy(F.col(column).cast("string").alias("v")).count()
           .orderBy(F.desc("count"), F.asc("v")).limit(6).collect())
    if bad:
        total = unusable.count()
        shown = ", ".join(f"{'null' if r['v'] is None else repr(r['v'])} ({r['count']} rows)" for r in bad[:5])
        raise InputError(f"split column {column!r}: {total} rows have no usable split value: {shown}"
                         f"{' ...' if len(bad) > 5 else ''}; allowed (case-insensitive): train, validation "
                         "(or val, valid, dev), test. Fix or drop those rows, or split by hash (remove "
                         "evaluation.split.column)")
    return labelled.withColumn(out, F.col("_wl_split")).drop("_wl_split")


def u_of(col: str, seed: str) -> Any:
    """Uniform [0, 1) value of a seeded hash of `col`."""
    return F.pmod(F.xxhash64(F.lit(seed), F.col(col).cast("string")), F.lit(_BUCKETS)) / F.lit(float(_BUCKETS))


def _label(u: Any, cut_train: float, cut_val: float) -> Any:
    return F.when(u < cut_train, "train").when(u < cut_val, "validation").otherwise("test")


def split_summary(df: DataFrame, splitter: DataSplitter, user_col: str = "user_id") -> dict[str, Any]:
    """Counts of rows (and users) per split with the splitter's settings: what is recorded with the model."""
    col = splitter.getOrDefault(splitter.outputCol)
    aggs = [F.count(F.lit(1)).alias("rows")]
    if user_col in df.columns:
        aggs.append(F.countDistinct(user_col).alias("users"))
    counts = {r[col]: r.asDict() for r in df.groupBy(col).agg(*aggs).collect()}
    official = splitter.getOrDefault(splitter.splitCol)
    return {
        "by": f"column {official}" if official else splitter.getOrDefault(splitter.by),
        "column": official or None,
        "seed": None if official else splitter.getOrDefault(splitter.seed),
        "fractions": None if official else dict(zip(SPLITS, splitter.getOrDefault(splitter.fractions), strict=True)),
        "counts": {s: {k: v for k, v in counts.get(s, {"rows": 0}).items() if k != col} for s in SPLITS},
    }


def record_split(splitter: DataSplitter, summary: dict[str, Any], model_dir: str | Path) -> None:
    """Save the splitter (pyspark.ml persistence) and its summary beside a model, so the split can be redone."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    splitter.write().overwrite().save(str(model_dir / "split"))
    write_json(summary, model_dir / "split.json")
