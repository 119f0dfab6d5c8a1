"""`wanderlens tune`: hyperparameter search for the multi-task model (trials as Spark tasks on the executors)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add the `tune` command."""

    @app.command("tune")
    def tune(
        features: Path = typer.Option(..., "--features", help="featurize output folder (or the features table)"),
        config: Path = typer.Option(..., "--config", help="YAML/TOML config with a `tuning` section (the space)"),
        out: Path = typer.Option(..., "--out", help="folder for best.yaml, trials.csv and tuning.json"),
        set_: list[str] = typer.Option(None, "--set", help="override a config key, e.g. tuning.trials=10"),
        master: str = typer.Option(None, "--master", help="Spark master URL (default: local)"),
    ) -> None:
        """Search the config's `tuning.space` with optuna's TPE; write the best config and a table of all trials."""
        from rich.console import Console

        from wanderlens.config import load_config
        from wanderlens.mtl.train import config_tasks, features_table
        from wanderlens.mtl.tuning import MultiTaskTuner
        from wanderlens.session import get_spark

        cfg = load_config(config, set_)
        tasks = config_tasks(features, cfg)
        console = Console(stderr=True)
        spark = get_spark(master=master)
        df = spark.read.parquet(str(features_table(features)))
        console.print(f"tuning: {cfg.tuning.trials} trials, {cfg.tuning.parallelism} at a time, "
                      f"metric {cfg.tuning.metric}, space {', '.join(cfg.tuning.space)}")
        result = MultiTaskTuner(spark, cfg, tasks).fit(df, out)
        best = ", ".join(f"{k}={v}" for k, v in result.best_params.items())
        console.print(f"best validation {cfg.tuning.metric} {result.best_value:.4f} with {best}")
        console.print(f"wrote {result.config_path} and {result.trials_path}")
