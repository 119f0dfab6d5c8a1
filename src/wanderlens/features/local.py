"""`LocalFeaturizer`: replays a saved feature pipeline on one photo, in-process, without starting Spark.

It reads the pipeline's own files (metadata JSON, the IDF weights as Parquet via pyarrow) and runs the same code
as the Spark stages (shared image, sentence and fusion functions; Spark's HashingTF hashing reproduced exactly),
so the REST service gets the features the batch job would compute for the same photo.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from wanderlens.errors import InputError
from wanderlens.features.fusion import fuse_arrays
from wanderlens.features.hashing import hashing_tf
from wanderlens.features.image import embed_images
from wanderlens.features.sentence import embed_sentences
from wanderlens.features.text import join_text
from wanderlens.io import read_ml_metadata

Row = dict[str, Any]
Step = Callable[[Row, "bytes | None"], None]


def _param(meta: dict[str, Any], name: str) -> Any:
    if name in meta.get("paramMap", {}):
        return meta["paramMap"][name]
    return meta.get("defaultParamMap", {}).get(name)


def _read_vector(value: dict[str, Any]) -> np.ndarray:
    """A Spark ML vector as stored in Parquet (struct type/size/indices/values) -> dense numpy."""
    if int(value["type"]) == 1:
        return np.asarray(value["values"], dtype=np.float64)
    out = np.zeros(int(value["size"]), dtype=np.float64)
    out[np.asarray(value["indices"], dtype=np.int64)] = value["values"]
    return out


def _java_len(token: str) -> int:
    """String length as the JVM counts it (UTF-16 code units), used by RegexTokenizer's minTokenLength."""
    return len(token.encode("utf-16-le")) // 2


class LocalFeaturizer:
    """A saved feature pipeline as plain Python: `transform_one(image_bytes, caption, tags) -> dict`."""

    def __init__(self, steps: list[tuple[str, Step]], path: Path) -> None:
        self.steps = steps
        self.path = path

    @classmethod
    def load(cls, feature_pipeline_dir: str | Path) -> LocalFeaturizer:
        """Read OUT/feature_pipeline (as written by `featurize`) without Spark."""
        path = Path(str(feature_pipeline_dir).removeprefix("file://"))
        if not (path / "metadata").is_dir():
            raise InputError(f"no saved feature pipeline at {path}; run 'wanderlens featurize' first")
        steps: list[tuple[str, Step]] = []
        cls._collect(path, steps)
        return cls(steps, path)

    @classmethod
    def _collect(cls, stage_dir: Path, steps: list[tuple[str, Step]]) -> None:
        meta = read_ml_metadata(stage_dir)
        kind = meta["class"].rsplit(".", 1)[-1]
        if kind == "PipelineModel":
            for i, uid in enumerate(_param(meta, "stageUids")):
                cls._collect(stage_dir / "stages" / f"{i}_{uid}", steps)
            return
        builder = getattr(cls, f"_step_{kind}", None)
        if builder is None:
            raise InputError(f"LocalFeaturizer cannot replay stage {meta['class']} (in {stage_dir})")
        steps.append((kind, builder(meta, stage_dir)))

    # One builder per stage class: each returns a function that updates the row dict in place.

    @staticmethod
    def _step_TextConcat(meta, _dir) -> Step:
        cap, tags, out = _param(meta, "captionCol"), _param(meta, "tagsCol"), _param(meta, "outputCol")

        def step(row: Row, _img) -> None:
            row[out] = join_text(row.get(cap), row.get(tags) if tags else None)
        return step

    @staticmethod
    def _step_RegexTokenizer(meta, _dir) -> Step:
        pattern = re.compile(_param(meta, "pattern"))
        gaps, lower = bool(_param(meta, "gaps")), bool(_param(meta, "toLowercase"))
        min_len = int(_param(meta, "minTokenLength"))
        inp, out = _param(meta, "inputCol"), _param(meta, "outputCol")

        def step(row: Row, _img) -> None:
            text = row.get(inp) or ""
            text = text.lower() if lower else text
            tokens = pattern.split(text) if gaps else pattern.findall(text)
            row[out] = [t for t in tokens if _java_len(t) >= min_len]
        return step

    @staticmethod
    def _step_StopWordsRemover(meta, _dir) -> Step:
        case = bool(_param(meta, "caseSensitive"))
        words = _param(meta, "stopWords") or []
        stop = set(words) if case else {w.lower() for w in words}
        inp, out = _param(meta, "inputCol"), _param(meta, "outputCol")

        def step(row: Row, _img) -> None:
            row[out] = [t for t in row.get(inp) or [] if (t if case else t.lower()) not in stop]
        return step

    @staticmethod
    def _step_HashingTF(meta, _dir) -> Step:
        n, binary = int(_param(meta, "numFeatures")), bool(_param(meta, "binary"))
        inp, out = _param(meta, "inputCol"), _param(meta, "outputCol")

        def step(row: Row, _img) -> None:
            row[out] = hashing_tf(row.get(inp) or [], n, binary)
        return step

    @staticmethod
    def _step_IDFModel(meta, stage_dir: Path) -> Step:
        import pyarrow.parquet as pq

        data = pq.read_table(str(stage_dir / "data")).to_pylist()[0]
        idf = _read_vector(data["idf"])
        inp, out = _param(meta, "inputCol"), _param(meta, "outputCol")

        def step(row: Row, _img) -> None:
            row[out] = row[inp] * idf
        return step

    @staticmethod
    def _step_Normalizer(meta, _dir) -> Step:
        p = float(_param(meta, "p"))
        inp, out = _param(meta, "inputCol"), _param(meta, "outputCol")

        def step(row: Row, _img) -> None:
            v = row[inp]
            norm = np.linalg.norm(v, ord=p) if np.isfinite(p) else np.abs(v).max(initial=0.0)
            row[out] = v / norm if norm != 0 else v.copy()
        return step

    @staticmethod
    def _step_DropColumns(meta, _dir) -> Step:
        cols = _param(meta, "cols") or []

        def step(row: Row, _img) -> None:
            for c in cols:
                row.pop(c, None)
        return step

    @staticmethod
    def _step_ImageEmbedder(meta, _dir) -> Step:
        enc, size = _param(meta, "encoder"), int(_param(meta, "imageSize"))
        top_k, batch = int(_param(meta, "topK")), int(_param(meta, "batchSize"))
        out, tags_col = _param(meta, "outputCol"), _param(meta, "tagsCol")
        err_col, pres_col = _param(meta, "errorCol"), _param(meta, "presenceCol")

        def step(row: Row, image: bytes | None) -> None:
            embs, tags, errors = embed_images([image], enc, size, top_k, batch)
            row[out] = None if embs[0] is None else embs[0].astype(np.float64)
            row[tags_col] = tags[0]
            row[err_col] = errors[0]
            row[pres_col] = 0.0 if embs[0] is None else 1.0
        return step

    @staticmethod
    def _step_SentenceEmbedder(meta, _dir) -> Step:
        cap, tags = _param(meta, "captionCol"), _param(meta, "tagsCol")
        out, pres_col, batch = _param(meta, "outputCol"), _param(meta, "presenceCol"), int(_param(meta, "batchSize"))

        def step(row: Row, _img) -> None:
            text = join_text(row.get(cap), row.get(tags) if tags else None).strip()
            emb, present = embed_sentences([text], batch)
            row[out] = emb[0].astype(np.float64)
            row[pres_col] = float(present[0])
        return step

    @staticmethod
    def _step_ModalityFusion(meta, _dir) -> Step:
        cols, sizes = _param(meta, "inputCols"), _param(meta, "inputSizes")
        presence, out = _param(meta, "presenceCols") or [], _param(meta, "outputCol")

        def step(row: Row, _img) -> None:
            blocks = [row.get(c) for c in cols]
            row[out] = fuse_arrays(blocks, sizes, [float(row.get(c) or 0.0) for c in presence])
        return step

    def transform_one(self, image_bytes: bytes | None, caption: str | None = None,
                      tags: list[str] | str | None = None) -> dict[str, Any]:
        """Features of one photo: image_embedding, image_tags, image_error, has_image, text_tfidf,
        sentence_embedding, has_text, features (numpy arrays; image_embedding None when the image is unusable)."""
        row: Row = {"caption": caption, "tags": tags}
        for _kind, step in self.steps:
            step(row, image_bytes)
        row.pop("caption", None)
        row.pop("tags", None)
        return row
