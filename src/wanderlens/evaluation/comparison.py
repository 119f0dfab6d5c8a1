"""The comparison of `wanderlens evaluate`: every variant's metrics per seed, their summary and Δm, as plain tables.

`Scores` collects the evaluator's table of each (variant, seed) with the fit time; `summarise` and `deltas` turn
the collected metrics into the comparison and Δm tables; `comparison_rows` and `delta_rows` give those tables as
plain rows of strings (title, header, rows) for any front end to print (the CLI draws them with rich).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame

from wanderlens.evaluation.evaluator import MultiTaskEvaluator, relative_changes

MTL_FUSED = "multi-task · fused"
SINGLE_FUSED = "single-task · fused"
MTL_IMAGE = "multi-task · image only"
MTL_TEXT = "multi-task · text only"
LOGISTIC = "MLlib LogisticRegression · fused"
XGBOOST = "XGBoost (Spark) · fused"

# The order variants are listed in (tables, report); others follow in the order they were recorded.
VARIANT_ORDER = (MTL_FUSED, SINGLE_FUSED, MTL_IMAGE, MTL_TEXT, LOGISTIC, XGBOOST)

# (name, candidate, baseline) pairs of the Δm table, in the order the terminal and the report show them.
DELTA_PAIRS: tuple[tuple[str, str, str], ...] = (
    ("multi-task vs single-task (fused)", MTL_FUSED, SINGLE_FUSED),
    ("fused vs image only (multi-task)", MTL_FUSED, MTL_IMAGE),
    ("fused vs text only (multi-task)", MTL_FUSED, MTL_TEXT),
    ("multi-task vs MLlib LogisticRegression (fused)", MTL_FUSED, LOGISTIC),
    ("multi-task vs XGBoost (fused)", MTL_FUSED, XGBOOST),
)


def modality_variant(name: str) -> str:
    """The variant name of the multi-task model trained on one modality's inputs only."""
    return {"image": MTL_IMAGE, "text": MTL_TEXT}.get(name, f"multi-task · {name} only")


def score(preds: DataFrame, tasks: Sequence[Any]) -> pd.DataFrame:
    """The evaluator's table (task, type, metric, value, n, main) of one prediction table, cached while scored."""
    preds = preds.cache()
    try:
        return MultiTaskEvaluator(tasks=list(tasks)).evaluate_all(preds)
    finally:
        preds.unpersist()


@dataclass
class Scores:
    """Every variant's evaluator table per seed, with the seconds each fit took."""

    tables: list[pd.DataFrame] = field(default_factory=list)
    fit_seconds: dict[str, list[float]] = field(default_factory=dict)

    def record(self, variant: str, seed: int, table: pd.DataFrame, seconds: float) -> None:
        """Keep one (variant, seed) table and its fit time."""
        self.tables.append(table.assign(variant=variant, seed=seed))
        self.fit_seconds.setdefault(variant, []).append(seconds)

    def metrics(self) -> pd.DataFrame:
        """Every metric of every variant and seed recorded so far (the rows of metrics.csv), the networks first
        (in `VARIANT_ORDER`), whatever order they were fitted in."""
        rank = {v: i for i, v in enumerate(VARIANT_ORDER)}
        tables = sorted(self.tables, key=lambda t: rank.get(str(t["variant"].iloc[0]), len(rank)))
        return pd.concat(tables, ignore_index=True)


def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds of each task's main metric per variant (the comparison table)."""
    main = metrics[metrics["main"]]
    g = main.groupby(["variant", "task", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std=lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, seeds="count")
    return out.reset_index()


def _delta_row(metrics: pd.DataFrame, name: str, cand: str, base: str) -> dict[str, Any] | None:
    """One Δm row: Δm per seed of `cand` over `base`, then mean ± std, with the per-task relative changes."""
    c_all, b_all = metrics[metrics["variant"] == cand], metrics[metrics["variant"] == base]
    if not len(c_all) or not len(b_all):
        return None
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
        return None
    wins = sum(v > 0 for v in per_seed)
    row = {"comparison": name, "candidate": cand, "baseline": base,
           "delta_m_mean": float(np.mean(per_seed)),
           "delta_m_std": float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0,
           "seeds": len(per_seed),
           "verdict": f"{'better' if np.mean(per_seed) > 0 else 'not better'}: Δm > 0 in {wins}/"
                      f"{len(per_seed)} seeds; tasks improved: "
                      f"{sum(np.mean(v) > 0 for v in per_task.values())}/{len(per_task)}"}
    row.update({f"Δ {t}": float(np.mean(v)) for t, v in per_task.items()})
    return row


def deltas(metrics: pd.DataFrame, pairs: Sequence[tuple[str, str, str]] = DELTA_PAIRS) -> pd.DataFrame:
    """Δm of each (name, candidate, baseline) pair per seed, then mean ± std, with per-task relative changes."""
    rows = [_delta_row(metrics, *pair) for pair in pairs]
    return pd.DataFrame([r for r in rows if r is not None])


@dataclass
class TextTable:
    """A table as plain strings: what a terminal (or any other front end) prints."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    right_aligned: list[bool]


def comparison_rows(summary: pd.DataFrame) -> TextTable:
    """The comparison table (main metric per task and variant, mean±std; n seeds in the title) as strings."""
    tasks = list(dict.fromkeys(summary["task"]))
    n = int(summary["seeds"].max()) if len(summary) else 0
    columns = ["variant"] + [f"{t}\n{summary[summary['task'] == t]['metric'].iloc[0]}" for t in tasks]
    rows = []
    for v in dict.fromkeys(summary["variant"]):
        cells = []
        for t in tasks:
            hit = summary[(summary["variant"] == v) & (summary["task"] == t)]
            cells.append(f"{hit['mean'].iloc[0]:.3f}±{hit['std'].iloc[0]:.3f}" if len(hit) else "–")
        rows.append([v, *cells])
    return TextTable(f"test split: main metric per task, mean±std over {n} seed(s)", columns, rows,
                     [False] + [True] * len(tasks))


def delta_rows(delta_table: pd.DataFrame) -> TextTable | None:
    """The Δm table (candidate over baseline, with per-task relative changes) as strings; None when empty."""
    if not len(delta_table):
        return None
    task_cols = [c for c in delta_table.columns if c.startswith("Δ ")]
    rows = [[r["comparison"], f"{r['delta_m_mean'] * 100:+.1f}%±{r['delta_m_std'] * 100:.1f}",
             *[f"{r[c] * 100:+.1f}%" if not math.isnan(r[c]) else "–" for c in task_cols]]
            for r in delta_table.to_dict("records")]
    return TextTable("Δm: mean relative improvement, candidate over baseline (+ = candidate better)",
                     ["comparison", "Δm", *[c[2:] for c in task_cols]], rows, [False, True] + [True] * len(task_cols))
