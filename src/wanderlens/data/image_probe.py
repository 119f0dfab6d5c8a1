"""`ImageProbe`: a Spark ML Transformer that opens each row's image on the executors and describes it.

Adds `width`, `height`, `format`, `num_bytes`, `sha256`, `probe_reason` (null when usable) and `probe_detail`,
using `probe_image` in Arrow batches (`mapInPandas`). Ingestion uses it; batch scoring can reuse it on any table
with an image path column. Rows whose `skipCol` is set (already rejected) are not opened.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pandas as pd
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import types as T

from wanderlens.data.probe import DEFAULT_MAX_PIXELS, probe_image
from wanderlens.errors import InputError

PROBE_FIELDS: tuple[T.StructField, ...] = (
    T.StructField("width", T.IntegerType()),
    T.StructField("height", T.IntegerType()),
    T.StructField("format", T.StringType()),
    T.StructField("num_bytes", T.LongType()),
    T.StructField("sha256", T.StringType()),
    T.StructField("probe_reason", T.StringType()),
    T.StructField("probe_detail", T.StringType()),
)
_NAMES = [f.name for f in PROBE_FIELDS]


def _is_set(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def probe_partitions(path_col: str, skip_col: str | None, max_pixels: int, decode: bool):
    """The `mapInPandas` function: probe each row's image (unless skipped) and append the probe columns."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        empty = (None,) * len(_NAMES)
        for pdf in batches:
            skips = pdf[skip_col] if skip_col else [None] * len(pdf)
            results = []
            for path, skip in zip(pdf[path_col], skips, strict=True):
                if _is_set(skip) or not _is_set(path):
                    results.append(empty)
                    continue
                r = probe_image(str(path), max_pixels=max_pixels, decode=decode)
                results.append((r.width, r.height, r.format, r.num_bytes, r.sha256, r.reason, r.detail))
            extra = pd.DataFrame(results, columns=_NAMES, index=pdf.index)
            for col in ("width", "height", "num_bytes"):
                extra[col] = extra[col].astype("Int64")
            yield pd.concat([pdf, extra], axis=1)

    return run


class ImageProbe(Transformer, HasInputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Image path column -> size, format, byte size, sha256 and the reason it is unusable (null when fine)."""

    maxPixels = Param(
        Params._dummy(),
        "maxPixels",
        "images declaring more pixels are decompression bombs",
        typeConverter=TypeConverters.toInt,
    )
    decode = Param(
        Params._dummy(),
        "decode",
        "decode (JPEG at 1/8 scale) to find corrupt or truncated data; false: structural checks only",
        typeConverter=TypeConverters.toBoolean,
    )
    skipCol = Param(
        Params._dummy(),
        "skipCol",
        "rows where this column is not null are not opened ('' = none)",
        typeConverter=TypeConverters.toString,
    )

    @keyword_only
    def __init__(
        self,
        *,
        inputCol: str = "image_path",
        maxPixels: int = DEFAULT_MAX_PIXELS,
        decode: bool = True,
        skipCol: str = "",
    ) -> None:
        super().__init__()
        self._setDefault(inputCol="image_path", maxPixels=DEFAULT_MAX_PIXELS, decode=True, skipCol="")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        path_col, skip_col = self.getInputCol(), self.getOrDefault(self.skipCol) or None
        missing = [c for c in (path_col, skip_col) if c and c not in dataset.columns]
        if missing:
            raise InputError(
                f"ImageProbe: column(s) {', '.join(missing)} not in the table (columns: {', '.join(dataset.columns)})"
            )
        clash = [n for n in _NAMES if n in dataset.columns]
        if clash:
            raise InputError(f"ImageProbe: the table already has column(s) {', '.join(clash)}; drop or rename them")
        schema = T.StructType(dataset.schema.fields + list(PROBE_FIELDS))
        fn = probe_partitions(path_col, skip_col, self.getOrDefault(self.maxPixels), self.getOrDefault(self.decode))
        return dataset.mapInPandas(fn, schema)
