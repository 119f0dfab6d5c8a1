"""Export a registry version to MLflow with the Spark flavor (optional extra `wanderlens[mlflow]`).

The logged model is one `PipelineModel`: the fitted feature pipeline, the `MultiTaskModel`, and a `SQLTransformer`
that adds a `prediction` column (JSON of every task's class name), because MLflow's pyfunc wrapper for Spark
models returns that column. `mlflow.pyfunc.load_model(uri).predict(photos_pandas_df)` then gives one JSON per photo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wanderlens.errors import WanderlensError
from wanderlens.serving.registry import ModelRegistry


def _flat_metrics(d: Any, prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat_metrics(v, f"{prefix}{k}."))
    elif isinstance(d, int | float) and not isinstance(d, bool):
        out[prefix.rstrip(".")] = float(d)
    return out


def prediction_sql(tasks: list[Any]) -> str:
    """SQL that adds `prediction`: a JSON object {task: class name (or names)} built from `<t>_prediction`."""
    fields = []
    for t in tasks:
        col = f"`{t.name}_prediction`"
        if t.type == "regression" or not t.classes:
            expr = col
        else:
            names = "array(" + ", ".join("'" + str(c).replace("'", "''") + "'" for c in t.classes) + ")"
            if t.type == "multilabel":
                expr = f"transform({col}, i -> element_at({names}, cast(i as int) + 1))"
            else:
                expr = f"element_at({names}, cast({col} as int) + 1)"
        fields.append(f"'{t.name}', {expr}")
    return f"SELECT *, to_json(named_struct({', '.join(fields)})) AS prediction FROM __THIS__"


def export_to_mlflow(registry: ModelRegistry, ref: str = "production", tracking_uri: str = "sqlite:///mlflow.db",
                     experiment: str = "wanderlens") -> str:
    """Log version `ref` to the MLflow store at `tracking_uri` (sqlite backend); returns the logged model's URI."""
    try:
        import mlflow
        import mlflow.spark
    except ImportError as exc:
        raise WanderlensError("MLflow export needs the optional extra: pip install 'wanderlens[mlflow]'") from exc
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import SQLTransformer

    from wanderlens.serving.scoring import load_multitask_model
    from wanderlens.session import get_spark

    version = registry.resolve(ref)
    meta = registry.metadata(version)
    art = registry.version_dir(version) / "artifacts"
    get_spark()
    features = PipelineModel.load(str(art / "feature_pipeline"))
    mtl = load_multitask_model(art / "model")
    pipeline = PipelineModel(stages=[features, mtl, SQLTransformer(statement=prediction_sql(mtl.tasks))])
    if tracking_uri.startswith("sqlite:///"):
        Path(tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    if mlflow.get_experiment_by_name(experiment) is None:
        location = None
        if tracking_uri.startswith("sqlite:///"):
            location = (Path(tracking_uri.removeprefix("sqlite:///")).resolve().parent / "artifacts").as_uri()
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"wanderlens-v{version}"):
        mlflow.log_params({"registry": str(registry.root), "version": version,
                           "data_snapshot_hash": meta.get("data_snapshot_hash"),
                           "package_version": meta.get("package_version")})
        metrics = _flat_metrics(meta.get("metrics") or {})
        if metrics:
            mlflow.log_metrics({k.replace("@", "_at_"): v for k, v in metrics.items()})
        mlflow.log_dict(meta, "wanderlens_metadata.json")
        info = mlflow.spark.log_model(pipeline, artifact_path="model")
    return info.model_uri
