"""Batch scoring (`wanderlens score`) on Spark with the registry's production model, and the optional MLflow export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from wanderlens.serving.registry import ModelRegistry


@pytest.fixture(scope="module")
def photo_folder(ingested_dir, tmp_path_factory) -> Path:
    """A nested folder of 10 sample photos (ingested, so readable), one corrupt .jpg and one non-image file."""
    import pyarrow.parquet as pq

    out = tmp_path_factory.mktemp("to_score")
    table = pq.read_table(str(ingested_dir / "photos"), columns=["image_path"]).to_pylist()
    images = sorted(Path(str(r["image_path"]).removeprefix("file://")) for r in table)[:10]
    for i, p in enumerate(images):
        dest = out / ("trip-a" if i % 2 else "trip-b") / p.name
        dest.parent.mkdir(exist_ok=True)
        shutil.copy(p, dest)
    (out / "trip-a" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (out / "notes.txt").write_text("not a photo")
    return out


def test_score_cli_writes_predictions_equal_to_single_photo_path(spark, serving_registry, photo_folder, tmp_path):
    from wanderlens.cli.main import app
    from wanderlens.serving.model import ServedModel

    out = tmp_path / "scored"
    r = CliRunner().invoke(app, ["score", "--registry", str(serving_registry), "--photos", str(photo_folder),
                                 "--out", str(out)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows"] == 11 and summary["image_errors"] == 1 and summary["model_version"] == 1
    rows = {r["photo_id"]: r for r in spark.read.parquet(str(out / "predictions")).collect()}
    assert "trip-a/broken.jpg" in rows and rows["trip-a/broken.jpg"]["image_error"]
    assert not any(pid.endswith("notes.txt") for pid in rows)
    served = ServedModel.load(ModelRegistry(serving_registry).version_dir(1))
    checked = 0
    for pid, row in sorted(rows.items()):
        if row["image_error"]:
            continue
        answer = served.describe((photo_folder / pid).read_bytes(), None, [])
        for name, task in answer["tasks"].items():
            np.testing.assert_allclose(task["probability"], row[f"{name}_probability"].toArray(), atol=1e-5)
            if task["type"] in ("multiclass", "binary"):
                assert row[f"{name}_label_name"] == task["prediction"]
        checked += 1
    assert checked == 10


def test_score_rejects_missing_folder(serving_registry, tmp_path):
    from wanderlens.cli.main import app

    r = CliRunner().invoke(app, ["score", "--registry", str(serving_registry), "--photos", str(tmp_path / "nope"),
                                 "--out", str(tmp_path / "o")])
    assert r.exit_code != 0
    assert "photos folder not found" in str(r.exception)


def test_mlflow_export_loads_with_pyfunc(spark, serving_registry, photo_folder, tmp_path):
    """The exported Spark-flavor model, logged to a local sqlite store, loads with pyfunc and predicts every task."""
    import mlflow
    import pandas as pd

    from wanderlens.serving.mlflow_export import export_to_mlflow

    uri = export_to_mlflow(ModelRegistry(serving_registry), "production",
                           tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(uri)
    photos = sorted(p for p in photo_folder.rglob("*.jpg") if p.name != "broken.jpg")[:2]
    frame = pd.DataFrame({"photo_id": [p.name for p in photos], "image_path": [str(p) for p in photos],
                          "caption": ["a beach", None], "tags": [["sea"], []]})
    out = model.predict(frame)
    preds = [json.loads(x) for x in (out["prediction"] if hasattr(out, "columns") else out)]
    assert len(preds) == 2 and all("scene" in p for p in preds)
