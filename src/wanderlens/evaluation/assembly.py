"""The report's content from a finished comparison: run facts, data summary, per-task figures, training curves
and the gallery, assembled into a `ReportContent` that `write_report` turns into report.html.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from wanderlens.evaluation import curves, plots
from wanderlens.evaluation.comparison import MTL_FUSED, Scores
from wanderlens.evaluation.evaluator import EvalTask, main_metric
from wanderlens.evaluation.report import Figure, GalleryItem, ReportContent, TaskSection, thumbnail_b64
from wanderlens.io import read_json


def data_summary(df: DataFrame, tasks: list[Any], features_dir: Path, photos_dir: Path | None) -> dict[str, Any]:
    """Counts for the report: rows, modality coverage, labelled rows per task, ingest quarantine reasons."""
    aggs = [F.count(F.lit(1)).alias("rows")]
    for c in ("has_image", "has_text"):
        if c in df.columns:
            aggs.append(F.sum(F.when(F.col(c) > 0, 1).otherwise(0)).alias(c))
    aggs += [F.count(F.col(f"{t.name}_label")).alias(f"lab_{t.name}") for t in tasks]
    if "user_id" in df.columns:
        aggs.append(F.countDistinct("user_id").alias("users"))
    r = df.agg(*aggs).first().asDict()
    out: dict[str, Any] = {"rows in the features table": r["rows"]}
    if "users" in r:
        out["users"] = r["users"]
    if "has_image" in r:
        out["rows with an image"] = r["has_image"]
    if "has_text" in r:
        out["rows with text"] = r["has_text"]
    candidates = [photos_dir] if photos_dir else []
    candidates += [features_dir.parent / "ingested", features_dir.parent / "photos"]
    for cand in candidates:
        if cand and (cand / "summary.json").is_file():
            s = read_json(cand / "summary.json")
            if "rows_in" in s:
                out.update({"manifest rows in": s.get("rows_in"), "rows kept": s.get("rows_kept"),
                            "rows quarantined": s.get("rows_quarantined")})
                out["quarantine reasons"] = dict(s.get("by_reason") or {})
                break
    else:
        out["quarantine"] = "ingest summary not found (pass --photos or set evaluation.photos_dir)"
    out["labelled rows per task"] = {t.name: r[f"lab_{t.name}"] for t in tasks}
    return out


def _fmt_pred(task: Any, row: dict[str, Any]) -> str:
    prob = row.get(f"{task.name}_probability")
    pred = row.get(f"{task.name}_prediction")
    if task.type == "regression":
        return f"{pred:.3g}"
    p = prob.toArray() if prob is not None else None
    if task.type == "binary":
        return f"{'yes' if pred == 1.0 else 'no'} ({p[1]:.2f})"
    if task.type == "multiclass":
        return f"{task.classes[int(pred)]} ({p[int(pred)]:.2f})"
    names = [f"{task.classes[int(k)]} ({p[int(k)]:.2f})" for k in (pred or [])]
    return ", ".join(names) if names else "none"


def _fmt_truth(task: Any, row: dict[str, Any]) -> str:
    v = row.get(f"{task.name}_label")
    if v is None:
        return "–"
    if task.type == "binary":
        return "yes" if v == 1.0 else "no"
    if task.type == "multiclass":
        return str(task.classes[int(v)]) if not math.isnan(v) else "–"
    if task.type == "multilabel":
        names = [str(task.classes[int(k)]) for k in v if not math.isnan(k)]
        return ", ".join(names) if names else "none"
    return f"{v:.3g}"


def _gallery(preds: DataFrame, tasks: list[Any], limit: int, descriptions: DataFrame | None) -> list[GalleryItem]:
    """The first `limit` test photos (by photo id) with predictions; descriptions shown when available."""
    if limit <= 0 or "photo_id" not in preds.columns:
        return []
    if descriptions is not None and "description" not in preds.columns:
        preds = preds.join(descriptions, "photo_id", "left")
    keep = [c for c in ("photo_id", "image_path", "caption", "description") if c in preds.columns]
    for t in tasks:
        keep += [c for c in (f"{t.name}_label", f"{t.name}_prediction", f"{t.name}_probability")
                 if c in preds.columns]
    items = []
    for row in preds.select(*keep).orderBy("photo_id").limit(limit).collect():
        r = row.asDict()
        items.append(GalleryItem(
            photo_id=str(r["photo_id"]), thumbnail_b64=thumbnail_b64(r.get("image_path")), caption=r.get("caption"),
            truth={t.name: _fmt_truth(t, r) for t in tasks}, predicted={t.name: _fmt_pred(t, r) for t in tasks},
            description=r.get("description")))
    return items


def descriptions(spark: SparkSession, travel_dir: Path | None) -> DataFrame | None:
    """The optional `description` per photo from the travel stage's output (photo_id, description)."""
    if travel_dir is None:
        return None
    table = Path(travel_dir) / "descriptions"
    if not table.is_dir():
        return None
    df = spark.read.parquet(str(table))
    if not {"photo_id", "description"} <= set(df.columns):
        return None
    return df.select("photo_id", "description").dropDuplicates(["photo_id"])


def _task_sections(preds: DataFrame, tasks: list[EvalTask]) -> list[TaskSection]:
    sections = []
    for t in tasks:
        sec = TaskSection(t.name, t.type)
        if t.type != "regression":
            cs = curves.score_curves(preds, t)
            if cs:
                sec.figures.append(Figure(f"{t.name}: ROC and precision-recall (one-vs-rest per class)"
                                          if t.type != "binary" else f"{t.name}: ROC and precision-recall",
                                          plots.roc_pr(cs, t.name)))
        if t.type == "multiclass":
            sec.figures.append(Figure(f"{t.name}: confusion matrix on the test split",
                                      plots.confusion(curves.confusion_matrix(preds, t), t.classes, t.name)))
        if t.type == "multilabel":
            sec.figures.append(Figure(f"{t.name}: F1 per label",
                                      plots.label_f1_bars(curves.per_label_f1(preds, t), t.name)))
        if t.type == "binary":
            rel = curves.reliability(preds, t)
            sec.notes.append(f"Expected calibration error (10 bins): {rel.ece:.4f}")
            sec.figures.append(Figure(f"{t.name}: reliability diagram (ECE {rel.ece:.3f})",
                                      plots.reliability_diagram(rel, t.name)))
        sections.append(sec)
    return sections


def _training_figures(history: list[dict[str, Any]], tasks: list[Any]) -> list[Figure]:
    if not history:
        return []
    names = [t.name for t in tasks]
    figs = [Figure("training loss per task", plots.series_by_epoch(
        {n: [h.get("loss", {}).get(n, math.nan) for h in history] for n in names}, "training loss", "loss")),
        Figure("task weights over epochs", plots.series_by_epoch(
            {n: [h.get("weights", {}).get(n, math.nan) for h in history] for n in names}, "task weights",
            "weight"))]
    if any("val" in h for h in history):
        val = {}
        for n in names:
            vals = []
            for h in history:
                d = h.get("val", {}).get(n, {})
                vals.append(next((v for k, v in d.items() if k not in ("loss", "n")), math.nan))
            val[n] = vals
        figs.append(Figure("validation metric per task (AUC / accuracy / F1 / RMSE)",
                           plots.series_by_epoch(val, "validation metric", "metric")))
        figs.append(Figure("validation loss per task", plots.series_by_epoch(
            {n: [h.get("val", {}).get(n, {}).get("loss", math.nan) for h in history] for n in names},
            "validation loss", "loss")))
    return figs


def first_seed_metrics(metrics: pd.DataFrame, seed: int) -> pd.DataFrame:
    """The evaluator's table of the multi-task model on fused inputs for `seed` (the report's metrics table)."""
    return metrics[(metrics["variant"] == MTL_FUSED) & (metrics["seed"] == seed)].drop(
        columns=["variant", "seed"]).reset_index(drop=True)


@dataclass
class Outcome:
    """A finished comparison: what was compared, on which data, and every number it produced."""

    features_dir: Path
    tasks: list[Any]
    seeds: list[int]
    model_settings: dict[str, Any]  # the MultiTaskClassifier Params the config sets (shown in the run facts)
    scores: Scores
    comparison: pd.DataFrame
    deltas: pd.DataFrame
    data_summary: dict[str, Any]


def _facts(outcome: Outcome, etasks: Sequence[EvalTask]) -> dict[str, Any]:
    """The report's run facts: when, what data, tasks, seeds, model settings, variants, fit time per variant."""
    metrics, params = outcome.scores.metrics(), outcome.model_settings
    return {"created (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "features": str(outcome.features_dir),
            "tasks": ", ".join(f"{t.name} ({t.type})" for t in outcome.tasks),
            "seeds": ", ".join(map(str, outcome.seeds)),
            "model": ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "MultiTaskClassifier defaults",
            "variants": ", ".join(dict.fromkeys(metrics["variant"])),
            "fit seconds (mean per seed)": ", ".join(f"{k}: {np.mean(v):.1f}"
                                                     for k, v in outcome.scores.fit_seconds.items()),
            "main metrics": ", ".join(f"{t.name}: {main_metric(t.type)}" for t in etasks)}


def report_content(outcome: Outcome, main_model: Any, main_preds: DataFrame, gallery: int,
                   photo_descriptions: DataFrame | None) -> ReportContent:
    """Everything report.html shows, from the comparison and the first seed's multi-task model and predictions."""
    etasks = [EvalTask.of(t) for t in outcome.tasks]
    split_by = outcome.data_summary["split"]["by"]
    return ReportContent(
        title="wanderlens evaluation report",
        facts=_facts(outcome, etasks),
        data_summary=outcome.data_summary,
        metrics=first_seed_metrics(outcome.scores.metrics(), outcome.seeds[0]),
        metrics_caption=f"Multi-task model on fused inputs, seed {outcome.seeds[0]}, test split: every metric from "
                        "MLlib's evaluators on the rows labelled for each task.",
        comparison=outcome.comparison, deltas=outcome.deltas,
        comparison_figure=Figure("main metric per task and variant (error bars: std over seeds)",
                                 plots.comparison_bars(outcome.comparison, "variants compared")),
        tasks=_task_sections(main_preds, etasks),
        training=_training_figures(main_model.history, outcome.tasks),
        gallery=_gallery(main_preds, outcome.tasks, gallery, photo_descriptions),
        notes=[("The split is the data's own (" + split_by + ")" if outcome.data_summary["split"].get("column")
                else "The split is fixed (seeded hash of the " + split_by + " id)")
               + "; seeds vary model initialisation and batch order. The baselines (LogisticRegression, XGBoost) "
               "are fitted once, with the first seed.",
               "Δm = mean over tasks of the signed relative change of each task's main metric (positive: the "
               "candidate is better), per seed, then mean ± std over seeds."],
    )
