"""Multi-task learning on Spark: task specs, architectures, loss weighting, and the MLlib-style estimator."""

from wanderlens.mtl.estimator import MultiTaskClassifier, MultiTaskModel
from wanderlens.mtl.local import LocalMultiTaskModel
from wanderlens.mtl.tasks import TaskSpec, index_labels

__all__ = ["MultiTaskClassifier", "MultiTaskModel", "LocalMultiTaskModel", "TaskSpec", "index_labels"]
