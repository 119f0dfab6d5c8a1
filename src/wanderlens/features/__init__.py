"""Multimodal features as Spark ML stages: image embeddings, text TF-IDF, sentence embeddings, fusion.

`featurize` runs them all from a photos table to a features table; `local.LocalFeaturizer` replays a saved
feature pipeline on one photo without Spark (for the REST service). The stages are imported on first use, so the
Spark-free parts (`encoders`, `preprocess`) load without pyspark, e.g. on a GPU machine without Spark.
"""

from __future__ import annotations

import importlib
from typing import Any

_STAGES = {
    "ImageEmbedder": "wanderlens.features.image",
    "ModalityFusion": "wanderlens.features.fusion",
    "SentenceEmbedder": "wanderlens.features.sentence",
    "TextFeaturizer": "wanderlens.features.text",
}

__all__ = ["ImageEmbedder", "ModalityFusion", "SentenceEmbedder", "TextFeaturizer"]


def __getattr__(name: str) -> Any:
    """`from wanderlens.features import ImageEmbedder` imports the stage's module then."""
    if name in _STAGES:
        return getattr(importlib.import_module(_STAGES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
