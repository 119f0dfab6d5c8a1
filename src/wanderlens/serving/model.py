"""One registry version loaded for serving, without Spark: the single-photo feature path, the multi-task head,
the description builder and the travel tables (suggestions, search index, photos) for per-user / per-query answers.

`ServedModel.describe_photos` is the REST service's `/v1/describe` on a micro-batch of photos (`serving/batching.py`);
`describe` is the same path for one photo. It runs the same fitted stages (ONNX / torch) as the Spark `transform`, so
a photo gets the same numbers either way, and the same JSON alone or in a batch (tests/test_serving_batching.py).
Everything a request would otherwise repeat (task tables, description roles, the JSON encoder) is built at load.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wanderlens.errors import WanderlensError
from wanderlens.io import read_json
from wanderlens.serving.batching import BatchFeaturizer, Photo
from wanderlens.serving.travel_tables import TravelTables


def _task_attr(task: Any, name: str) -> Any:
    return task[name] if isinstance(task, dict) else getattr(task, name)


def _tag(tag: Any) -> dict[str, Any]:
    """An ImageNet tag as {label, prob}, from a (label, prob) pair, a dict or a Row."""
    if isinstance(tag, dict):
        return {"label": str(tag["label"]), "prob": float(tag["prob"])}
    if isinstance(tag, tuple | list):
        return {"label": str(tag[0]), "prob": float(tag[1])}
    return {"label": str(tag.label), "prob": float(tag.prob)}


class ServedModel:
    """The feature pipeline, MultiTaskModel and travel tables of one registry version, ready to answer requests."""

    def __init__(self, version: int, root: Path, metadata: dict[str, Any], featurizer: Any, mtl: Any,
                 travel: TravelTables | None) -> None:
        self.version = version
        self.root = root
        self.metadata = metadata
        self.featurizer = featurizer
        self.mtl = mtl
        self.travel = travel
        self.novelty: Any = None  # travel.novelty.LocalNovelty of the version's travel artifacts, when it has one
        self.loaded_at = time.time()
        self._lock = threading.Lock()
        self._batch: BatchFeaturizer | None = None
        self._roles: Any = None
        self._task_table: list[tuple[str, str, list[str] | None]] | None = None
        self._json = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

    @classmethod
    def load(cls, version_dir: str | Path) -> ServedModel:
        """Load a registry version folder (`metadata.json` + `artifacts/`) with no Spark."""
        from wanderlens.features.local import LocalFeaturizer
        from wanderlens.mtl.local import LocalMultiTaskModel

        version_dir = Path(version_dir)
        meta = read_json(version_dir / "metadata.json")
        art = version_dir / "artifacts"
        if not (art / "feature_pipeline").is_dir() or not (art / "model").is_dir():
            raise WanderlensError(f"registry version {version_dir} lacks artifacts/feature_pipeline or artifacts/model")
        featurizer = LocalFeaturizer.load(str(art / "feature_pipeline"))
        mtl = LocalMultiTaskModel.load(str(art / "model"))
        travel = TravelTables.load(art / "travel") if (art / "travel").is_dir() else None
        served = cls(int(meta["version"]), version_dir, meta, featurizer, mtl, travel)
        if (art / "travel" / "novelty").is_dir():
            from wanderlens.travel.novelty import LocalNovelty

            served.novelty = LocalNovelty.load(art / "travel" / "novelty")
        served.warm_up()
        return served

    @property
    def tasks(self) -> list[Any]:
        return list(self.mtl.tasks)

    @property
    def batch_featurizer(self) -> BatchFeaturizer:
        """The batched feature path (stage parameters, encoder and label table read once)."""
        if self._batch is None:
            self._batch = BatchFeaturizer(self.featurizer)
        return self._batch

    @property
    def task_table(self) -> list[tuple[str, str, list[str] | None]]:
        """(name, type, class names) per task, read once from the task specs."""
        if self._task_table is None:
            self._task_table = [
                (str(_task_attr(t, "name")), str(_task_attr(t, "type")),
                 [str(c) for c in _task_attr(t, "classes")] if _task_attr(t, "classes") else None)
                for t in self.tasks]
        return self._task_table

    def photo(self, image_bytes: bytes, caption: str | None = None, tags: list[str] | None = None) -> Photo:
        """Decode one photo for a batch; an undecodable image gives `pixels=None` and its `image_error`."""
        try:
            pixels, error = self.batch_featurizer.preprocess(image_bytes), None
        except Exception as exc:  # noqa: BLE001 - the photo's own problem, reported with it
            pixels, error = None, f"{type(exc).__name__}: {exc}"[:500]
        return Photo(pixels, error, caption, list(tags) if tags is not None else None)

    def encode_json(self, answer: dict[str, Any]) -> bytes:
        """An answer as the JSON body the service sends (one encoder, built at load)."""
        return self._json.encode(answer).encode("utf-8")

    def warm_up(self) -> None:
        """Run one tiny photo through every stage so the first real request pays no lazy initialisation."""
        import io

        from PIL import Image

        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (120, 160, 200)).save(buf, format="JPEG")
        self.describe(buf.getvalue(), "warm up", [])
        from wanderlens.serving.batching import embed_texts

        embed_texts(["warm up"])  # the search query path

    def featurize(self, image_bytes: bytes, caption: str | None, tags: list[str] | None) -> dict[str, Any]:
        """The single-photo feature path (same numbers as the Spark feature pipeline)."""
        return self.featurizer.transform_one(image_bytes, caption, tags)

    def predict(self, features: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """Per task `prediction`, `probability`, `rawPrediction` for one fused feature vector (as transform gives)."""
        x = np.asarray(features, dtype=np.float64).reshape(1, -1)
        out = self.mtl.predict_full(x)
        return {name: {k: np.asarray(v[0]) for k, v in parts.items()} for name, parts in out.items()}

    def task_outputs(self, outputs: dict[str, dict[str, np.ndarray]]) -> dict[str, dict[str, Any]]:
        """Readable per-task predictions: class names and probabilities in the TaskSpec class order."""
        result: dict[str, dict[str, Any]] = {}
        for name, kind, classes in self.task_table:
            parts = outputs.get(name)
            if parts is None:
                continue
            prob = [float(x) for x in np.asarray(parts["probability"]).reshape(-1)]
            pred = np.asarray(parts["prediction"], dtype=np.float64).reshape(-1)
            entry: dict[str, Any] = {"type": kind, "probability": prob,
                                     "rawPrediction": [float(x) for x in np.asarray(parts["rawPrediction"]).ravel()]}
            if kind == "regression":
                entry["prediction"] = float(pred[0])
            else:
                names = list(classes) if classes else [str(c) for c in range(len(prob))]
                entry["classes"] = names
                if kind == "multilabel":
                    entry["prediction"] = [names[int(i)] for i in pred]
                else:
                    entry["prediction"] = names[int(pred[0])]
                entry["prediction_index"] = [float(i) for i in pred] if kind == "multilabel" else float(pred[0])
            result[name] = entry
        return result

    def describe(self, image_bytes: bytes, caption: str | None = None, tags: list[str] | None = None,
                 ) -> dict[str, Any]:
        """Everything `/v1/describe` answers for one photo: per-task predictions, ImageNet labels, a description.

        The batch path with a batch of one, so the service gives the same answer alone or batched."""
        answer = self.describe_photos([self.photo(image_bytes, caption, tags)])[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def describe_photos(self, photos: Sequence[Photo], filenames: Sequence[str | None] | None = None,
                        ) -> list[dict[str, Any] | BaseException]:
        """`describe` for a batch of decoded photos: the encoders and the task heads run once on the batch, then
        each photo gets its answer (or its own exception, which does not fail the others)."""
        from wanderlens.threads import default_threads, torch_threads

        with torch_threads(default_threads()):
            t0 = time.perf_counter()
            rows = self.batch_featurizer.featurize(photos)
            t1 = time.perf_counter()
            full = self.mtl.predict_full(np.stack([np.asarray(r["features"], dtype=np.float64) for r in rows]))
            t2 = time.perf_counter()
        timing = {"features": round((t1 - t0) * 1000, 2), "tasks": round((t2 - t1) * 1000, 2),
                  "batch_size": len(photos)}
        answers: list[dict[str, Any] | BaseException] = []
        for i, (photo, feats) in enumerate(zip(photos, rows, strict=True)):
            try:
                outputs = {name: {k: np.asarray(v[i]) for k, v in parts.items()} for name, parts in full.items()}
                answer = self._answer(feats, outputs, photo.caption)
                answer["timing_ms"] = dict(timing)
                if filenames is not None:
                    answer["filename"] = filenames[i]
                answers.append(answer)
            except Exception as exc:  # noqa: BLE001 - this photo's answer only
                answers.append(exc)
        return answers

    def _answer(self, feats: dict[str, Any], outputs: dict[str, dict[str, np.ndarray]], caption: str | None,
                ) -> dict[str, Any]:
        """One photo's answer from its feature row and its per-task head outputs."""
        tasks = self.task_outputs(outputs)
        imagenet = [_tag(t) for t in (feats.get("image_tags") or [])]
        novelty = self._novelty(feats)
        description, claims = self._description(tasks, imagenet, bool(novelty and novelty["novel"]), caption)
        return {
            "novelty": novelty,
            "model_version": self.version,
            "tasks": tasks,
            "imagenet_labels": imagenet,
            "description": description,
            "claims": claims,
            "image_error": feats.get("image_error"),
        }

    def _novelty(self, feats: dict[str, Any]) -> dict[str, Any] | None:
        """{score, threshold, novel} of one photo against the training photos (None without a novelty model)."""
        if self.novelty is None:
            return None
        score = self.novelty.score(feats.get(self.novelty.features_col))
        return {"score": score, "threshold": self.novelty.threshold, "novel": self.novelty.is_novel(score)}

    def _description(self, tasks: dict[str, dict[str, Any]], imagenet: list[dict[str, Any]], novel: bool = False,
                     caption: str | None = None) -> tuple[str, list[dict[str, Any]]]:
        """The description sentence through the one description path the Spark batch job uses too
        (`travel.describe.describe_predictions` with `task_roles`: scene, attributes, time of day)."""
        from wanderlens.travel.describe import describe_predictions, task_roles

        if self._roles is None:  # the task roles are the model's: worked out once
            self._roles = task_roles(self.tasks)
        probabilities = {name: entry["probability"] for name, entry in tasks.items()}
        return describe_predictions(self._roles, probabilities,
                                    imagenet=[(d["label"], d["prob"]) for d in imagenet], novel=novel,
                                    caption=caption)
