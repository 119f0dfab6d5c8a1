"""`TextFeaturizer`: an Estimator turning caption + tags into L2-normalised TF-IDF vectors with MLlib stages.

The fitted model is a `PipelineModel` of `TextConcat`, `RegexTokenizer`, `StopWordsRemover`, `HashingTF`, `IDF`,
`Normalizer` and `DropColumns`, so it persists with pyspark.ml and its saved files can be replayed without Spark
(`wanderlens.features.local`). Missing or empty text gives a zero vector, never an error.
"""

from __future__ import annotations

from pyspark import keyword_only
from pyspark.ml import Estimator, Pipeline, PipelineModel, Transformer
from pyspark.ml.feature import IDF, HashingTF, Normalizer, RegexTokenizer, StopWordsRemover
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

# Token separators spelled out so Java's regex (Spark) and Python's `re` (the single-photo path) agree exactly.
TOKEN_SPLIT_PATTERN = r"[ \t\n\r\f\v.,;:!?\"()\[\]{}<>/\\|@#$%^&*+=~_`-]+"


class HasTextCols(Params):
    """Caption and tags input columns (tags: array<string> or a string)."""

    captionCol = Param(Params._dummy(), "captionCol", "caption column (string)", typeConverter=TypeConverters.toString)
    tagsCol = Param(Params._dummy(), "tagsCol", "tags column (array<string> or string); '' for none",
                    typeConverter=TypeConverters.toString)

    def getCaptionCol(self) -> str:
        return self.getOrDefault(self.captionCol)

    def getTagsCol(self) -> str:
        return self.getOrDefault(self.tagsCol)


def text_expr(dataset: DataFrame, caption_col: str, tags_col: str) -> F.Column:
    """SQL expression joining caption and tags with spaces; absent columns and nulls count as empty."""
    parts = []
    if caption_col and caption_col in dataset.columns:
        parts.append(F.col(caption_col).cast("string"))
    if tags_col and tags_col in dataset.columns:
        tags = F.col(tags_col)
        if isinstance(dataset.schema[tags_col].dataType, T.ArrayType):
            tags = F.concat_ws(" ", tags)
        parts.append(tags.cast("string"))
    return F.concat_ws(" ", *parts) if parts else F.lit("")


def join_text(caption: str | None, tags) -> str:
    """Python twin of `text_expr` for one row."""
    parts = []
    if caption is not None:
        parts.append(str(caption))
    if tags is not None:
        if isinstance(tags, str):
            parts.append(tags)
        else:
            parts.append(" ".join(str(t) for t in tags if t is not None))
    return " ".join(parts)


class TextConcat(Transformer, HasTextCols, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Caption + tags -> one string column (the tokenizer's input)."""

    @keyword_only
    def __init__(self, *, captionCol: str = "caption", tagsCol: str = "tags", outputCol: str = "text") -> None:
        super().__init__()
        self._setDefault(captionCol="caption", tagsCol="tags", outputCol="text")
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return dataset.withColumn(self.getOutputCol(), text_expr(dataset, self.getCaptionCol(), self.getTagsCol()))


class DropColumns(Transformer, DefaultParamsReadable, DefaultParamsWritable):
    """Drops intermediate columns at the end of a composite stage."""

    cols = Param(Params._dummy(), "cols", "columns to drop", typeConverter=TypeConverters.toListString)

    @keyword_only
    def __init__(self, *, cols: list[str] | None = None) -> None:
        super().__init__()
        self._setDefault(cols=[])
        self._set(**self._input_kwargs)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        return dataset.drop(*self.getOrDefault(self.cols))


class TextFeaturizer(Estimator, HasTextCols, HasOutputCol, DefaultParamsReadable, DefaultParamsWritable):
    """Estimator: fits IDF weights on the corpus; its model maps caption + tags to a normalised TF-IDF vector."""

    numFeatures = Param(Params._dummy(), "numFeatures", "HashingTF buckets", typeConverter=TypeConverters.toInt)
    minDocFreq = Param(Params._dummy(), "minDocFreq", "IDF: terms in fewer documents get weight 0",
                       typeConverter=TypeConverters.toInt)
    minTokenLength = Param(Params._dummy(), "minTokenLength", "shortest token kept",
                           typeConverter=TypeConverters.toInt)
    stopWords = Param(Params._dummy(), "stopWords", "words removed (default: Spark's English list)",
                      typeConverter=TypeConverters.toListString)

    @keyword_only
    def __init__(self, *, captionCol: str = "caption", tagsCol: str = "tags", outputCol: str = "text_tfidf",
                 numFeatures: int = 4096, minDocFreq: int = 1, minTokenLength: int = 2,
                 stopWords: list[str] | None = None) -> None:
        super().__init__()
        self._setDefault(captionCol="caption", tagsCol="tags", outputCol="text_tfidf", numFeatures=4096,
                         minDocFreq=1, minTokenLength=2)
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    def _fit(self, dataset: DataFrame) -> PipelineModel:
        p = f"__{self.uid}_"
        stop = (self.getOrDefault(self.stopWords) if self.isDefined(self.stopWords)
                else StopWordsRemover.loadDefaultStopWords("english"))
        stages = [
            TextConcat(captionCol=self.getCaptionCol(), tagsCol=self.getTagsCol(), outputCol=p + "text"),
            RegexTokenizer(inputCol=p + "text", outputCol=p + "tokens", pattern=TOKEN_SPLIT_PATTERN, gaps=True,
                           toLowercase=True, minTokenLength=self.getOrDefault(self.minTokenLength)),
            StopWordsRemover(inputCol=p + "tokens", outputCol=p + "words", stopWords=stop, caseSensitive=False),
            HashingTF(inputCol=p + "words", outputCol=p + "tf", numFeatures=self.getOrDefault(self.numFeatures)),
            IDF(inputCol=p + "tf", outputCol=p + "tfidf", minDocFreq=self.getOrDefault(self.minDocFreq)),
            Normalizer(inputCol=p + "tfidf", outputCol=self.getOutputCol(), p=2.0),
            DropColumns(cols=[p + s for s in ("text", "tokens", "words", "tf", "tfidf")]),
        ]
        return Pipeline(stages=stages).fit(dataset)
