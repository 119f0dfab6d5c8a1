"""wanderlens: multimodal, multi-task learning on Apache Spark MLlib, and a travel-photo application on it."""

__version__ = "0.1.0"
