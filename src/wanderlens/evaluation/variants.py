"""The network variants of `wanderlens evaluate`, each trained once per seed on the same split.

The multi-task model on the fused inputs; one single-task model per task (same network family, trained alone);
the multi-task model on each single modality's inputs (re-fused with the same per-block normalisation as the full
fused vector). The split stays fixed, so the spread over seeds is the model's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from wanderlens.config import ModalityConfig
from wanderlens.errors import InputError
from wanderlens.evaluation.comparison import MTL_FUSED, SINGLE_FUSED, Scores, modality_variant, score
from wanderlens.evaluation.evaluator import MultiTaskEvaluator

VALIDATION_COL = "_is_validation"


def _vector_size(df: DataFrame, col: str) -> int:
    row = df.where(F.col(col).isNotNull()).select(col).first()
    if row is None:
        raise InputError(f"column {col!r} is null on every row; cannot build a single-modality input from it")
    return int(row[0].size)


def add_modality_inputs(df: DataFrame, features_dir: Path,
                        modalities: dict[str, ModalityConfig]) -> tuple[DataFrame, dict[str, str]]:
    """One fused vector per modality (`_in_<name>`), normalised per block like the full fused vector."""
    from wanderlens.features.fusion import ModalityFusion, fitted_fusion

    fitted = fitted_fusion(features_dir)
    sizes = fitted.input_sizes() if fitted is not None else {}
    cols: dict[str, str] = {}
    for name, spec in modalities.items():
        inputs, presence = list(spec.columns), list(spec.presence)
        missing = [c for c in inputs + presence if c not in df.columns]
        if missing:
            raise InputError(f"evaluation.modalities.{name}: columns {missing} are not in the features table")
        out = f"_in_{name}"
        df = ModalityFusion(inputCols=inputs, inputSizes=[sizes.get(c) or _vector_size(df, c) for c in inputs],
                            presenceCols=presence, outputCol=out).transform(df)
        cols[name] = out
    return df, cols


def fit_mtl(train: DataFrame, tasks: Sequence[Any], features_col: str, params: dict[str, Any], seed: int,
            **override: Any) -> Any:
    """A MultiTaskClassifier fitted on `train` with `params`, the validation rows marked by the split."""
    from wanderlens.mtl import MultiTaskClassifier

    est = MultiTaskClassifier(tasks=list(tasks), featuresCols=[features_col], seed=seed,
                              validationIndicatorCol=VALIDATION_COL, **{**params, **override})
    return est.fit(train)


@dataclass
class VariantRun:
    """What one seed's variants share: the rows to fit on, the test rows, the tasks and the model Params."""

    fit_rows: DataFrame
    test: DataFrame
    tasks: list[Any]
    features_col: str
    params: dict[str, Any]
    notify: Callable[[str], None]


def _single_task(run: VariantRun, seed: int, scores: Scores) -> None:
    """One single-task model per task on the fused inputs, scored together as one variant."""
    parts, secs = [], 0.0
    for t in run.tasks:
        run.notify(f"seed {seed}: single-task model for {t.name}")
        t0 = time.perf_counter()
        # A task-named early-stopping monitor only exists in that task's own fit.
        monitor = run.params.get("monitor", "loss")
        own = {"monitor": "loss"} if monitor not in ("loss", "metric", t.name) else {}
        single = fit_mtl(run.fit_rows.where(F.col(f"{t.name}_label").isNotNull()), [t], run.features_col,
                         run.params, seed, architecture="single_task", **own)
        secs += time.perf_counter() - t0
        parts.append(score(single.transform(run.test), [t]))
    scores.record(SINGLE_FUSED, seed, pd.concat(parts, ignore_index=True), secs)


def train_variants(run: VariantRun, seeds: Sequence[int], single_task: bool, modality_cols: dict[str, str],
                   scores: Scores, partial_csv: Path) -> tuple[Any, DataFrame]:
    """Train and score every network variant for every seed; return the first seed's multi-task model and its
    (cached) test predictions, which the report draws from.

    After each seed the metrics so far are written to `partial_csv`, so a long run that dies keeps its seeds.
    """
    main_model, main_preds = None, None
    for i, seed in enumerate(seeds):
        run.notify(f"seed {seed}: multi-task model on fused inputs")
        t0 = time.perf_counter()
        model = fit_mtl(run.fit_rows, run.tasks, run.features_col, run.params, seed)
        secs = time.perf_counter() - t0
        preds = model.transform(run.test)
        if i == 0:
            main_model, main_preds = model, preds.cache()
            table = MultiTaskEvaluator(tasks=run.tasks).evaluate_all(main_preds)
        else:
            table = score(preds, run.tasks)
        scores.record(MTL_FUSED, seed, table, secs)
        if single_task:
            _single_task(run, seed, scores)
        for name, col in modality_cols.items():
            run.notify(f"seed {seed}: multi-task model on {name} only")
            t0 = time.perf_counter()
            # One modality has nothing to drop: modality dropout is for the fused inputs.
            m = fit_mtl(run.fit_rows, run.tasks, col, run.params, seed, modalityDropout=0.0, modalityBlocks=[])
            scores.record(modality_variant(name), seed, score(m.transform(run.test), run.tasks),
                          time.perf_counter() - t0)
        scores.metrics().to_csv(partial_csv, index=False)
    return main_model, main_preds
