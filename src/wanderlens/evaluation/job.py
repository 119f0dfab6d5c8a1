"""The comparison job behind `wanderlens evaluate`: trains every variant on one seeded split and writes the report.

Variants, all scored on the same test rows by `MultiTaskEvaluator`: the multi-task model on fused inputs; one
single-task model per task (same network family, trained alone); the multi-task model on image-only and on
text-only inputs (re-fused with the same per-block normalisation); and the baseline a Spark user would reach for
first, one MLlib `LogisticRegression` per task (per label for multi-label tasks) on the fused features.
Every network variant is trained once per seed; the split stays fixed, so the spread is the model's.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.functions import array_to_vector, vector_to_array
from pyspark.ml.regression import LinearRegression
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from rich.console import Console
from rich.table import Table

from wanderlens.errors import ConfigError, InputError
from wanderlens.evaluation import curves, plots
from wanderlens.evaluation.evaluator import EvalTask, MultiTaskEvaluator, main_metric, relative_changes
from wanderlens.evaluation.report import (
    Figure,
    GalleryItem,
    ReportContent,
    TaskSection,
    thumbnail_b64,
    write_report,
)
from wanderlens.evaluation.splits import DataSplitter, record_split, split_summary
from wanderlens.io import read_json, write_json

MTL_FUSED = "multi-task · fused"
SINGLE_FUSED = "single-task · fused"
MTL_IMAGE = "multi-task · image only"
MTL_TEXT = "multi-task · text only"
LOGISTIC = "MLlib LogisticRegression · fused"
COMPARISONS = ("single_task", "modality", "logistic")

DEFAULTS: dict[str, Any] = {
    "split": {"by": "photo", "seed": 0, "fractions": [0.7, 0.15, 0.15]},
    "seeds": [0, 1, 2],
    "compare": list(COMPARISONS),
    "features_col": "features",
    "modalities": {
        "image": {"columns": ["image_embedding"], "presence": ["has_image"]},
        "text": {"columns": ["text_tfidf", "sentence_embedding"], "presence": ["has_text"]},
    },
    "logistic": {"reg_param": 0.01, "elastic_net": 0.0, "max_iter": 100},
    "gallery": 24,
    "photos_dir": None,
}

def evaluation_config(config: dict[str, Any] | None) -> dict[str, Any]:
    """The `evaluation` section of a wanderlens config over the defaults, checked."""
    section = dict((config or {}).get("evaluation") or {})
    unknown = sorted(set(section) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"evaluation: unknown keys {unknown}; known: {sorted(DEFAULTS)}")
    out = copy.deepcopy(DEFAULTS)
    for key, value in section.items():
        if isinstance(out[key], dict) and isinstance(value, dict) and key != "modalities":
            out[key].update(value)
        else:
            out[key] = value
    bad = sorted(set(out["compare"]) - set(COMPARISONS))
    if bad:
        raise ConfigError(f"evaluation.compare: unknown {bad}; use any of {list(COMPARISONS)}")
    if not out["seeds"]:
        raise ConfigError("evaluation.seeds: give at least one seed")
    return out


def model_params(config: dict[str, Any] | None) -> dict[str, Any]:
    """MultiTaskClassifier Params from the config's `model` and `training` sections (as `wanderlens train` reads
    them), less those the comparison sets itself: seed, inputs, validation rows and checkpoints."""
    from wanderlens.mtl.train import estimator_params

    params = estimator_params(config or {})
    for own in ("seed", "featuresCols", "validationFraction", "validationIndicatorCol", "checkpointDir"):
        params.pop(own, None)
    return params


def _tasks(df: DataFrame, features_dir: Path, config: dict[str, Any]) -> list[Any]:
    from wanderlens.mtl.data import infer_classes
    from wanderlens.mtl.train import config_tasks

    return infer_classes(df, config_tasks(features_dir, config))


def _read_features(spark: SparkSession, features_dir: Path) -> DataFrame:
    table = features_dir / "features" if (features_dir / "features").is_dir() else features_dir
    if not table.is_dir():
        raise InputError(f"features table not found at {features_dir}; pass the folder written by "
                         "'wanderlens featurize --out'")
    return spark.read.parquet(str(table))


def _fusion_sizes(features_dir: Path) -> dict[str, int]:
    """Block sizes of the fitted ModalityFusion stage of the saved feature pipeline, by input column."""
    stages = sorted((features_dir / "feature_pipeline" / "stages").glob("*ModalityFusion*"))
    if not stages:
        return {}
    from wanderlens.features.fusion import ModalityFusion

    fusion = ModalityFusion.load(str(stages[0]))
    return dict(zip(fusion.getInputCols(), fusion.getOrDefault(fusion.inputSizes), strict=True))


def _vector_size(df: DataFrame, col: str) -> int:
    row = df.where(F.col(col).isNotNull()).select(col).first()
    if row is None:
        raise InputError(f"column {col!r} is null on every row; cannot build a single-modality input from it")
    return int(row[0].size)


def add_modality_inputs(df: DataFrame, features_dir: Path, modalities: dict[str, Any]) -> tuple[DataFrame, dict]:
    """One fused vector per modality (`_in_<name>`), normalised per block like the full fused vector."""
    from wanderlens.features.fusion import ModalityFusion

    sizes = _fusion_sizes(features_dir)
    cols: dict[str, str] = {}
    for name, spec in modalities.items():
        inputs, presence = list(spec.get("columns") or []), list(spec.get("presence") or [])
        missing = [c for c in inputs + presence if c not in df.columns]
        if missing:
            raise InputError(f"evaluation.modalities.{name}: columns {missing} are not in the features table")
        out = f"_in_{name}"
        df = ModalityFusion(inputCols=inputs, inputSizes=[sizes.get(c) or _vector_size(df, c) for c in inputs],
                            presenceCols=presence, outputCol=out).transform(df)
        cols[name] = out
    return df, cols


def _fit_mtl(train: DataFrame, tasks: list[Any], features_col: str, params: dict[str, Any], seed: int,
             **override: Any) -> Any:
    from wanderlens.mtl import MultiTaskClassifier

    est = MultiTaskClassifier(tasks=tasks, featuresCols=[features_col], seed=seed,
                              validationIndicatorCol="_is_validation", **{**params, **override})
    return est.fit(train)


def _fit_logistic(train: DataFrame, tasks: list[Any], features_col: str, settings: dict[str, Any]) -> Callable:
    """One MLlib LogisticRegression per task (per label for multi-label; LinearRegression for regression).

    Returns a function adding MLlib-shaped `<t>_prediction/_probability/_rawPrediction` columns to a DataFrame.
    """
    kw = {"featuresCol": features_col, "regParam": float(settings["reg_param"]),
          "elasticNetParam": float(settings["elastic_net"]), "maxIter": int(settings["max_iter"])}
    steps: list[Callable[[DataFrame], DataFrame]] = []
    for t in tasks:
        label = f"{t.name}_label"
        rows = train.where(F.col(label).isNotNull())
        if t.type == "regression":
            m = LinearRegression(labelCol=label, predictionCol=f"{t.name}_prediction", **kw).fit(rows)
            steps.append(m.transform)
        elif t.type in ("binary", "multiclass"):
            k = 2 if t.type == "binary" else len(t.classes)
            # Declaring the class count in the label's metadata keeps every class in the output vector.
            meta = {"ml_attr": {"type": "nominal", "num_vals": k, "name": label}}
            lab = F.col(label).alias(label, metadata=meta)
            m = LogisticRegression(labelCol=label, family="binomial" if k == 2 else "multinomial",
                                   predictionCol=f"{t.name}_prediction", probabilityCol=f"{t.name}_probability",
                                   rawPredictionCol=f"{t.name}_rawPrediction", **kw)
            m = m.fit(rows.withColumn(label, lab))
            steps.append(m.transform)
        else:
            steps.append(_multilabel_logistic(rows, t, kw))
    def apply(df: DataFrame) -> DataFrame:
        for step in steps:
            df = step(df)
        return df
    return apply


def _multilabel_logistic(rows: DataFrame, task: Any, kw: dict[str, Any]) -> Callable[[DataFrame], DataFrame]:
    """Binary relevance: one binomial LogisticRegression per label, assembled into the multilabel columns."""
    label = f"{task.name}_label"
    models = []
    for k in range(len(task.classes)):
        y = F.array_contains(F.col(label), float(k)).cast("double")
        part = rows.withColumn("_y", y)
        if part.where(F.col("_y") == 1.0).limit(1).count() == 0:
            models.append(None)  # label never seen in training: always predicted absent
            continue
        models.append(LogisticRegression(labelCol="_y", predictionCol=f"_p{k}", probabilityCol=f"_prob{k}",
                                         rawPredictionCol=f"_raw{k}", **kw).fit(part))

    def apply(df: DataFrame) -> DataFrame:
        probs = []
        for k, m in enumerate(models):
            if m is None:
                probs.append(F.lit(0.0))
                continue
            df = m.transform(df)
            probs.append(vector_to_array(F.col(f"_prob{k}"))[1])
            df = df.drop(f"_p{k}", f"_raw{k}")
        df = df.withColumn("_probs", F.array(*probs))
        n = len(models)
        pred = F.filter(F.array(*[F.when(F.col("_probs")[k] > 0.5, float(k)) for k in range(n)]),
                        lambda x: x.isNotNull())
        logit = F.transform(F.col("_probs"), lambda p: F.log(F.greatest(p, F.lit(1e-12)) /
                                                             F.greatest(1 - p, F.lit(1e-12))))
        return (df.withColumn(f"{task.name}_prediction", pred)
                .withColumn(f"{task.name}_probability", array_to_vector(F.col("_probs")))
                .withColumn(f"{task.name}_rawPrediction", array_to_vector(logit))
                .drop("_probs", *[f"_prob{k}" for k in range(n)]))
    return apply


def _evaluate(preds: DataFrame, tasks: list[Any]) -> pd.DataFrame:
    preds = preds.cache()
    try:
        return MultiTaskEvaluator(tasks=tasks).evaluate_all(preds)
    finally:
        preds.unpersist()


def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of each task's main metric per variant (the comparison table)."""
    main = metrics[metrics["main"]]
    g = main.groupby(["variant", "task", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, seeds="count")
    return out.reset_index()


def deltas(metrics: pd.DataFrame, pairs: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    """Δm of each (name, candidate, baseline) pair per seed, then mean ± std, with per-task relative changes."""
    rows = []
    for name, cand, base in pairs:
        c_all, b_all = metrics[metrics["variant"] == cand], metrics[metrics["variant"] == base]
        if not len(c_all) or not len(b_all):
            continue
        b_seeds = sorted(b_all["seed"].unique())
        per_seed, per_task = [], {}
        for seed in sorted(c_all["seed"].unique()):
            b_seed = seed if seed in b_seeds else b_seeds[0]  # deterministic baselines are fitted once
            ch = relative_changes(c_all[c_all["seed"] == seed], b_all[b_all["seed"] == b_seed])
            if ch:
                per_seed.append(sum(ch.values()) / len(ch))
            for t, v in ch.items():
                per_task.setdefault(t, []).append(v)
        if not per_seed:
            continue
        wins = sum(v > 0 for v in per_seed)
        row = {"comparison": name, "candidate": cand, "baseline": base,
               "delta_m_mean": float(np.mean(per_seed)),
               "delta_m_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
               "seeds": len(per_seed),
               "verdict": f"{'better' if np.mean(per_seed) > 0 else 'not better'}: Δm > 0 in {wins}/"
                          f"{len(per_seed)} seeds; tasks improved: "
                          f"{sum(np.mean(v) > 0 for v in per_task.values())}/{len(per_task)}"}
        row.update({f"Δ {t}": float(np.mean(v)) for t, v in per_task.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _data_summary(spark: SparkSession, df: DataFrame, tasks: list[Any], features_dir: Path,
                  photos_dir: Path | None) -> dict[str, Any]:
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
        out["quarantine"] = "ingest summary not found (pass photos_dir / evaluation.photos_dir)"
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


def _descriptions(spark: SparkSession, travel_dir: Path | None) -> DataFrame | None:
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


def print_comparison(summary: pd.DataFrame, delta_table: pd.DataFrame, console: Console) -> None:
    """The comparison table and the Δm table on the terminal (compact: mean±std, n seeds in the title)."""
    tasks = list(dict.fromkeys(summary["task"]))
    n = int(summary["seeds"].max()) if len(summary) else 0
    table = Table(title=f"test split: main metric per task, mean±std over {n} seed(s)")
    table.add_column("variant")
    for t in tasks:
        table.add_column(f"{t}\n{summary[summary['task'] == t]['metric'].iloc[0]}", justify="right")
    for v in dict.fromkeys(summary["variant"]):
        cells = []
        for t in tasks:
            hit = summary[(summary["variant"] == v) & (summary["task"] == t)]
            cells.append(f"{hit['mean'].iloc[0]:.3f}±{hit['std'].iloc[0]:.3f}" if len(hit) else "–")
        table.add_row(v, *cells)
    console.print(table)
    if len(delta_table):
        dt = Table(title="Δm: mean relative improvement, candidate over baseline (+ = candidate better)")
        dt.add_column("comparison")
        dt.add_column("Δm", justify="right")
        task_cols = [c for c in delta_table.columns if c.startswith("Δ ")]
        for c in task_cols:
            dt.add_column(c[2:], justify="right")
        for r in delta_table.to_dict("records"):
            dt.add_row(r["comparison"], f"{r['delta_m_mean'] * 100:+.1f}%±{r['delta_m_std'] * 100:.1f}",
                       *[f"{r[c] * 100:+.1f}%" if not math.isnan(r[c]) else "–" for c in task_cols])
        console.print(dt)


def evaluate_job(spark: SparkSession, features_dir: str | Path, config: dict[str, Any] | None,
                 out_dir: str | Path, seeds: Sequence[int] | None = None, travel_dir: str | Path | None = None,
                 photos_dir: str | Path | None = None, console: Console | None = None,
                 progress: Callable[[str], None] | None = None) -> Path:
    """Train and compare every variant on one seeded split, print the tables, write OUT/report.html; return it.

    Also writes OUT/metrics.csv (every metric of every variant and seed), OUT/comparison.csv, OUT/deltas.csv,
    OUT/model (the first seed's multi-task model, its split recorded beside it) and OUT/split.json.
    """
    t_start = time.perf_counter()
    console = console or Console()
    notify = progress or (lambda msg: console.print(f"[dim]{msg}[/]"))
    config = dict(config or {})
    cfg = evaluation_config(config)
    seeds = list(seeds) if seeds is not None else list(cfg["seeds"])
    if not seeds:
        raise ConfigError("evaluate: give at least one seed")
    features_dir = Path(str(features_dir).removeprefix("file://")).resolve()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    photos = Path(photos_dir or cfg["photos_dir"]) if (photos_dir or cfg["photos_dir"]) else None

    from wanderlens.mtl.tasks import index_labels

    raw = _read_features(spark, features_dir)
    tasks = _tasks(raw, features_dir, config)
    etasks = [EvalTask.of(t) for t in tasks]
    fcol = cfg["features_col"]
    if fcol not in raw.columns:
        raise InputError(f"features column {fcol!r} missing from {features_dir}; set evaluation.features_col")
    df = index_labels(raw, tasks)
    sp = cfg["split"]
    splitter = DataSplitter(by=sp["by"], seed=int(sp["seed"]), fractions=[float(x) for x in sp["fractions"]])
    df = splitter.transform(df).withColumn("_is_validation", F.col("split") == "validation")
    compare = set(cfg["compare"])
    modality_cols: dict[str, str] = {}
    if "modality" in compare:
        df, modality_cols = add_modality_inputs(df, features_dir, cfg["modalities"])
    keep = [c for c in ("photo_id", "user_id", "image_path", "caption", "description") if c in df.columns]
    keep += [f"{t.name}_label" for t in tasks] + [t.label_col for t in tasks if t.label_col not in keep]
    keep += [fcol, *modality_cols.values(), "split", "_is_validation"]
    df = df.select(*dict.fromkeys(keep)).cache()
    notify("splitting and summarising the data")
    split_info = split_summary(df, splitter)
    if split_info["counts"]["test"]["rows"] == 0 or split_info["counts"]["train"]["rows"] == 0:
        raise InputError(f"split {split_info['counts']}: train or test is empty; use more data or other fractions")
    summary = _data_summary(spark, df, tasks, features_dir, photos)
    summary["split"] = split_info
    fit_rows = df.where(F.col("split") != "test")
    test = df.where(F.col("split") == "test").cache()
    params = model_params(config)
    rows: list[pd.DataFrame] = []
    fit_seconds: dict[str, list[float]] = {}

    def record(variant: str, seed: int, table: pd.DataFrame, seconds: float) -> None:
        rows.append(table.assign(variant=variant, seed=seed))
        fit_seconds.setdefault(variant, []).append(seconds)

    main_model, main_preds = None, None
    for i, seed in enumerate(seeds):
        notify(f"seed {seed}: multi-task model on fused inputs")
        t0 = time.perf_counter()
        model = _fit_mtl(fit_rows, tasks, fcol, params, seed)
        secs = time.perf_counter() - t0
        preds = model.transform(test)
        if i == 0:
            main_model, main_preds = model, preds.cache()
            table = MultiTaskEvaluator(tasks=tasks).evaluate_all(main_preds)
        else:
            table = _evaluate(preds, tasks)
        record(MTL_FUSED, seed, table, secs)
        if "single_task" in compare:
            parts, secs = [], 0.0
            for t in tasks:
                notify(f"seed {seed}: single-task model for {t.name}")
                t0 = time.perf_counter()
                # A task-named early-stopping monitor only exists in that task's own fit.
                monitor = params.get("monitor", "loss")
                own = {"monitor": "loss"} if monitor not in ("loss", "metric", t.name) else {}
                single = _fit_mtl(fit_rows.where(F.col(f"{t.name}_label").isNotNull()), [t], fcol, params, seed,
                                  architecture="single_task", **own)
                secs += time.perf_counter() - t0
                parts.append(_evaluate(single.transform(test), [t]))
            record(SINGLE_FUSED, seed, pd.concat(parts, ignore_index=True), secs)
        for name, col in modality_cols.items():
            notify(f"seed {seed}: multi-task model on {name} only")
            t0 = time.perf_counter()
            m = _fit_mtl(fit_rows, tasks, col, params, seed)
            record({"image": MTL_IMAGE, "text": MTL_TEXT}.get(name, f"multi-task · {name} only"), seed,
                   _evaluate(m.transform(test), tasks), time.perf_counter() - t0)
        # Partial results after every seed, so a long run that dies still leaves its finished seeds.
        pd.concat(rows, ignore_index=True).to_csv(out / "metrics.partial.csv", index=False)
    if "logistic" in compare:
        notify("MLlib LogisticRegression per task on fused inputs (deterministic: fitted once)")
        t0 = time.perf_counter()
        lr = _fit_logistic(df.where(F.col("split") == "train"), tasks, fcol, cfg["logistic"])
        record(LOGISTIC, seeds[0], _evaluate(lr(test), tasks), time.perf_counter() - t0)

    metrics = pd.concat(rows, ignore_index=True)
    comparison = summarise(metrics)
    pairs = [("multi-task vs single-task (fused)", MTL_FUSED, SINGLE_FUSED),
             ("fused vs image only (multi-task)", MTL_FUSED, MTL_IMAGE),
             ("fused vs text only (multi-task)", MTL_FUSED, MTL_TEXT),
             ("multi-task vs MLlib LogisticRegression (fused)", MTL_FUSED, LOGISTIC)]
    delta_table = deltas(metrics, pairs)
    print_comparison(comparison, delta_table, console)

    notify("saving the model and the split, drawing the report")
    main_model.write().overwrite().save(str(out / "model"))
    record_split(splitter, split_info, out / "model")
    write_json(split_info, out / "split.json")
    metrics.to_csv(out / "metrics.csv", index=False)
    (out / "metrics.partial.csv").unlink(missing_ok=True)
    comparison.to_csv(out / "comparison.csv", index=False)
    delta_table.to_csv(out / "deltas.csv", index=False)
    first = metrics[(metrics["variant"] == MTL_FUSED) & (metrics["seed"] == seeds[0])].drop(
        columns=["variant", "seed"]).reset_index(drop=True)
    write_json({"tasks": [t.to_dict() for t in tasks], "metrics": first.to_dict("records"),
                "comparison": comparison.to_dict("records"), "deltas": delta_table.to_dict("records")},
               out / "metrics.json")

    content = ReportContent(
        title="wanderlens evaluation report",
        facts={"created (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"), "features": str(features_dir),
               "tasks": ", ".join(f"{t.name} ({t.type})" for t in tasks), "seeds": ", ".join(map(str, seeds)),
               "model": ", ".join(f"{k}={v}" for k, v in sorted(params.items())) or "MultiTaskClassifier defaults",
               "variants": ", ".join(dict.fromkeys(metrics["variant"])),
               "fit seconds (mean per seed)": ", ".join(f"{k}: {np.mean(v):.1f}" for k, v in fit_seconds.items()),
               "main metrics": ", ".join(f"{t.name}: {main_metric(t.type)}" for t in etasks)},
        data_summary=summary,
        metrics=first,
        metrics_caption=f"Multi-task model on fused inputs, seed {seeds[0]}, test split: every metric from MLlib's "
                        "evaluators on the rows labelled for each task.",
        comparison=comparison, deltas=delta_table,
        comparison_figure=Figure("main metric per task and variant (error bars: std over seeds)",
                                 plots.comparison_bars(comparison, "variants compared")),
        tasks=_task_sections(main_preds, etasks),
        training=_training_figures(main_model.history, tasks),
        gallery=_gallery(main_preds, tasks, int(cfg["gallery"]), _descriptions(spark, travel_dir)),
        notes=["The split is fixed (seeded hash of the " + split_info["by"] + " id); seeds vary model "
               "initialisation and batch order. LogisticRegression is deterministic and fitted once.",
               "Δm = mean over tasks of the signed relative change of each task's main metric (positive: the "
               "candidate is better), per seed, then mean ± std over seeds."],
    )
    path = write_report(content, out)
    main_preds.unpersist()
    test.unpersist()
    df.unpersist()
    console.print(f"report: {path}  ({time.perf_counter() - t_start:.0f} s)")
    return path
