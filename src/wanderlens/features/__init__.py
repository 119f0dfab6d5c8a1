"""Multimodal features as Spark ML stages: image embeddings, text TF-IDF, sentence embeddings, fusion.

`featurize` runs them all from a photos table to a features table; `local.LocalFeaturizer` replays a saved
feature pipeline on one photo without Spark (for the REST service).
"""

from wanderlens.features.fusion import ModalityFusion
from wanderlens.features.image import ImageEmbedder
from wanderlens.features.sentence import SentenceEmbedder
from wanderlens.features.text import TextFeaturizer

__all__ = ["ImageEmbedder", "ModalityFusion", "SentenceEmbedder", "TextFeaturizer"]
