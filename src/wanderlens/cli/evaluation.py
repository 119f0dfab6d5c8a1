"""`wanderlens evaluate`: multi-task vs single-task vs single-modality vs MLlib LogisticRegression, and report.html."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from wanderlens.errors import ConfigError

console = Console()


def _parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError as exc:
        raise ConfigError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2") from exc


def register(app: typer.Typer) -> None:
    """Add `wanderlens evaluate` to the CLI."""

    @app.command()
    def evaluate(
        features: Path = typer.Option(..., "--features", help="Folder written by 'wanderlens featurize --out'."),
        config: Path = typer.Option(None, "--config", help="Config file (YAML/TOML): tasks, model, evaluation."),
        out: Path = typer.Option(..., "--out", help="Report folder: report.html, metrics.csv, model, split."),
        seeds: str = typer.Option(None, help="Comma-separated model seeds (default: evaluation.seeds, 0,1,2)."),
        photos: Path = typer.Option(None, help="Ingest output folder, for the quarantine summary in the report."),
        travel: Path = typer.Option(None, help="Travel output folder: photo descriptions shown in the gallery."),
        set_: list[str] = typer.Option(None, "--set", help="Config override, e.g. --set model.epochs=5 (repeatable)."),
        master: str = typer.Option(None, help="Spark master URL (default: local[*] or WANDERLENS_SPARK_MASTER)."),
    ) -> None:
        """Train and compare every variant on one seeded split; print the table and write report.html."""
        from wanderlens.config import apply_overrides, load_config
        from wanderlens.evaluation.job import evaluate_job
        from wanderlens.session import get_spark

        cfg = apply_overrides(load_config(config), set_ or [])
        spark = get_spark(master=master)
        with console.status("evaluating") as status:
            report = evaluate_job(spark, features, cfg, out, seeds=_parse_seeds(seeds), travel_dir=travel,
                                  photos_dir=photos, console=console,
                                  progress=lambda msg: status.update(f"evaluate: {msg}"))
        console.print(f"[bold green]Report:[/] {report}")
