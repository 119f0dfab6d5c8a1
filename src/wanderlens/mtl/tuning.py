"""Hyperparameter search for `MultiTaskClassifier` on the cluster: optuna's TPE sampler, trials run as Spark tasks.

`MultiTaskTuner(spark, config, tasks).fit(df, out_dir)` (behind `wanderlens tune`):

1. prepares the data once as `fit` does (input checks, label encoding, the tabular spec, the train / validation
   split) and writes the training and validation rows as Parquet shards under `out_dir/shards`. On a cluster
   `out_dir` must be on a file system every executor reads (HDFS, NFS, a mounted bucket);
2. asks optuna's TPE sampler for `tuning.parallelism` trials at a time (ask/tell), and runs each batch as Spark
   tasks on the executors (`sc.parallelize(trials, n).map(...)`): each task trains with the estimator's own
   `run_training` on the shards and scores the trained network on the validation rows with the per-task metrics of
   `wanderlens.mtl.metrics` (the numbers MLlib's evaluators and `MultiTaskEvaluator` give, tested there);
3. writes `best.yaml` (the config with the best trial's values, loadable with `load_config`), `trials.csv` (every
   trial's settings, per-task validation metrics, objective, epochs and time) and `tuning.json` (the summary).

The search space lives in the config's `tuning` section (`wanderlens.config.TuningConfig`):

    tuning:
      trials: 20
      parallelism: 2
      metric: mean            # or a task name
      space:
        model.architecture: [mmoe, shared_bottom]
        model.expert_hidden: [[64], [128, 64]]
        training.learning_rate: {low: 0.0003, high: 0.01, log: true}

The estimator also works inside pyspark.ml.tuning's `CrossValidator` / `TrainValidationSplit` with a
`ParamGridBuilder` over its Params and a `MultiTaskEvaluator` (see tests/test_tuning.py); those fit on the driver.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pyspark.sql import DataFrame, SparkSession

from wanderlens.config import WanderlensConfig, param_name, parse_config
from wanderlens.errors import ConfigError
from wanderlens.mtl.tasks import TaskSpec, parse_tasks

SHARDS = "shards"


@dataclass
class TuningResult:
    """What a search found: the best trial's settings and objective, every trial, and where the files are."""

    best_params: dict[str, Any]
    best_value: float
    trials: pd.DataFrame
    config_path: Path
    trials_path: Path


def _suggest(trial: Any, key: str, domain: Any) -> Any:
    """One value for `key` from optuna's `trial`: a choice (lists stored as JSON strings), or a float/int range."""
    if isinstance(domain, list):
        choices = [json.dumps(c) if isinstance(c, list | dict) else c for c in domain]
        value = trial.suggest_categorical(key, choices)
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value
    low, high, log, step = domain["low"], domain["high"], bool(domain.get("log", False)), domain.get("step")
    if isinstance(low, int) and isinstance(high, int) and not isinstance(low, bool):
        return trial.suggest_int(key, low, high, log=log, step=int(step or 1))
    return trial.suggest_float(key, float(low), float(high), log=log, step=step)


def objective_direction(tasks: list[TaskSpec], metric: str) -> str:
    """'maximize' for AUC / accuracy / F1 objectives, 'minimize' for RMSE (a regression task, or all-regression)."""
    names = {t.name: t for t in tasks}
    if metric != "mean" and metric not in names:
        raise ConfigError(f"tuning.metric {metric!r}: use 'mean' or a task name ({sorted(names)})")
    chosen = [names[metric]] if metric != "mean" else tasks
    return "minimize" if all(t.type == "regression" for t in chosen) else "maximize"


def objective(metrics: dict[str, float], tasks: list[TaskSpec], metric: str) -> float:
    """The trial's objective from its per-task validation metrics: one task's, or the mean over the tasks that are
    not regression (all of them when every task is regression)."""
    if metric != "mean":
        return metrics[metric]
    kept = [metrics[t.name] for t in tasks if t.type != "regression"] or list(metrics.values())
    kept = [v for v in kept if not math.isnan(v)]
    return float(np.mean(kept)) if kept else float("nan")


def run_trial(item: tuple[int, Any]) -> dict[str, Any]:
    """Executor side: train one trial's `TrainingRun` on the shards and score it on the validation shard."""
    from wanderlens.mtl.data import read_shard
    from wanderlens.mtl.local import LocalMultiTaskModel
    from wanderlens.mtl.metrics import task_metric
    from wanderlens.mtl.trainer import load_state, run_training

    number, run = item
    t0 = time.perf_counter()
    try:
        res = run_training(run)
        tasks = run.task_specs()
        model = LocalMultiTaskModel(run.tasks, run.arch, run.input_dim, load_state(res["state"]))
        val = read_shard(run.val_path, 0, 1, tasks, run.input_dim)
        outs = model.raw_outputs(val.x.astype(np.float64)) if len(val) else [np.zeros((0, t.num_outputs))
                                                                              for t in tasks]
        metrics = {t.name: float(task_metric(t, o, y, m))
                   for t, o, y, m in zip(tasks, outs, val.targets, val.masks, strict=True)}
        return {"number": number, "metrics": metrics, "epochs": len(res["history"]),
                "seconds": time.perf_counter() - t0, "error": ""}
    except Exception as exc:  # noqa: BLE001 - one failed trial is recorded as failed; the search goes on
        return {"number": number, "metrics": {}, "epochs": 0, "seconds": time.perf_counter() - t0,
                "error": f"{type(exc).__name__}: {exc}"}


class MultiTaskTuner:
    """Hyperparameter search over `MultiTaskClassifier` settings, with the config's `tuning` section."""

    def __init__(self, spark: SparkSession, config: WanderlensConfig | dict[str, Any] | None,
                 tasks: list[TaskSpec | dict[str, Any]]) -> None:
        self.spark = spark
        self.config = parse_config(config)
        self.tasks = parse_tasks(list(tasks))
        if not self.config.tuning.space:
            raise ConfigError("tuning.space is empty: name at least one setting to search, e.g. "
                              "tuning: {space: {training.learning_rate: {low: 0.0003, high: 0.01, log: true}}}")

    def _estimator(self) -> Any:
        from wanderlens.mtl.estimator import MultiTaskClassifier

        return MultiTaskClassifier(tasks=self.tasks, **self.config.estimator_params())

    def prepare(self, df: DataFrame, work: str) -> dict[str, Any]:
        """Check and encode the rows once, split them, write the shards; what every trial shares."""
        from wanderlens.mtl.data import class_weights, infer_classes, validate_input, write_shards

        est = self._estimator()
        arch = est._arch_config()
        dataset = est._fit_tabular(df, arch)
        tasks = infer_classes(dataset, self.tasks)
        summary = validate_input(dataset, est._input_cols(), tasks)
        training = self.config.training
        if not training.validation_indicator_col and training.validation_fraction == 0:
            training = training.model_copy(update={"validation_fraction": self.config.tuning.validation_fraction})
        train_df, val_df = est._split(dataset, tasks, training)
        seed = int(training.seed)
        write_shards(train_df, os.path.join(work, "train"), 1, seed)
        write_shards(val_df, os.path.join(work, "val"), 1, seed + 1)
        return {"est": est, "tasks": tasks, "summary": summary, "tabular": arch.get("tabular"),
                "work": work, "class_weights": class_weights}

    def trial_run(self, shared: dict[str, Any], params: dict[str, Any]) -> Any:
        """The `TrainingRun` of one trial: the base settings with the trial's values (validated like Params)."""
        from wanderlens.config import TrainingConfig
        from wanderlens.mtl.trainer import TrainingRun

        est = shared["est"]
        trial_est = est.copy({est.getParam(param_name(k.partition(".")[2])): v for k, v in params.items()})
        arch = trial_est._arch_config()
        if shared["tabular"]:
            model = trial_est._section(type(self.config.model))
            arch["tabular"] = {**shared["tabular"], "embedding_dim": model.embedding_dim,
                               "numeric_embedding": model.numeric_embedding, "periodic_sigma": model.periodic_sigma}
        training = trial_est._section(TrainingConfig).model_copy(update={"checkpoint_dir": "", "num_processes": 1})
        tasks = shared["tasks"]
        return TrainingRun(
            tasks=[t.to_dict() for t in tasks], arch=arch, training=training, input_dim=shared["summary"].input_dim,
            train_path=os.path.join(shared["work"], "train"), val_path=os.path.join(shared["work"], "val"),
            class_weights=shared["class_weights"](tasks, shared["summary"], training.class_weights),
        )

    def fit(self, df: DataFrame, out_dir: str | Path, keep_shards: bool = False) -> TuningResult:
        """Run the search on `df`; write best.yaml, trials.csv and tuning.json to `out_dir`."""
        import optuna

        tun, out = self.config.tuning, Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        direction = objective_direction(self.tasks, tun.metric)
        shared = self.prepare(df, str(out / SHARDS))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction=direction, sampler=optuna.samplers.TPESampler(seed=tun.seed))
        rows: list[dict[str, Any]] = []
        sc = self.spark.sparkContext
        try:
            while len(rows) < tun.trials:
                asked = [study.ask() for _ in range(min(tun.parallelism, tun.trials - len(rows)))]
                params = {t.number: {k: _suggest(t, k, d) for k, d in tun.space.items()} for t in asked}
                runs = [(t.number, self.trial_run(shared, params[t.number])) for t in asked]
                results = sc.parallelize(runs, len(runs)).map(run_trial).collect()
                for trial, res in zip(asked, sorted(results, key=lambda r: r["number"]), strict=True):
                    rows.append(self._tell(study, trial, params[trial.number], res, shared["tasks"]))
        finally:
            if not keep_shards:
                shutil.rmtree(out / SHARDS, ignore_errors=True)
        return self._write(study, rows, out, direction)

    def _tell(self, study: Any, trial: Any, params: dict[str, Any], res: dict[str, Any],
              tasks: list[TaskSpec]) -> dict[str, Any]:
        """Report one finished trial to the sampler; its row of the trials table."""
        import optuna

        value = objective(res["metrics"], tasks, self.config.tuning.metric) if not res["error"] else float("nan")
        if math.isnan(value):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
        return {"trial": trial.number, "state": "fail" if math.isnan(value) else "complete", "value": value,
                **{k: json.dumps(v) if isinstance(v, list) else v for k, v in params.items()},
                **{f"val_{k}": v for k, v in res["metrics"].items()},
                "epochs": res["epochs"], "seconds": round(res["seconds"], 2), "error": res["error"]}

    def _write(self, study: Any, rows: list[dict[str, Any]], out: Path, direction: str) -> TuningResult:
        """best.yaml (the config with the best values), trials.csv and tuning.json."""
        done = [r for r in rows if r["state"] == "complete"]
        if not done:
            errors = sorted({r["error"] for r in rows})
            raise ConfigError(f"every tuning trial failed; first error: {errors[0] if errors else 'unknown'}")
        best = study.best_trial
        best_params = {k: _suggest_value(best.params[k]) for k in self.config.tuning.space}
        raw = self.config.model_dump(mode="json", exclude_defaults=True)
        for key, value in best_params.items():
            section, _, name = key.partition(".")
            raw.setdefault(section, {})[name] = value
        parse_config(raw, "tuned config")  # what is written must load
        config_path, trials_path = out / "best.yaml", out / "trials.csv"
        header = (f"# written by wanderlens tune: best of {len(rows)} trials, validation {self.config.tuning.metric} "
                  f"{best.value:.6f} ({direction})\n")
        config_path.write_text(header + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        table = pd.DataFrame(rows)
        table.to_csv(trials_path, index=False)
        (out / "tuning.json").write_text(json.dumps(
            {"best_trial": best.number, "best_value": best.value, "best_params": best_params,
             "metric": self.config.tuning.metric, "direction": direction, "trials": len(rows),
             "failed": len(rows) - len(done)}, indent=2), encoding="utf-8")
        return TuningResult(best_params, float(best.value), table, config_path, trials_path)


def _suggest_value(value: Any) -> Any:
    """A stored optuna parameter back as the config value (lists were stored as JSON strings)."""
    return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value


__all__ = ["MultiTaskTuner", "TuningResult", "objective", "objective_direction", "run_trial"]
