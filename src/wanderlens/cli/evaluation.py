"""`wanderlens evaluate`: multi-task vs single-task vs single-modality vs MLlib LogisticRegression (and, opt-in with
`evaluation.compare: [..., xgboost]`, gradient-boosted trees), and report.html.

The job (`wanderlens.evaluation.job.evaluate_job`) returns its tables as data; this module prints them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from wanderlens.errors import ConfigError

if TYPE_CHECKING:  # the evaluation package imports Spark and pandas: only when the command runs
    from wanderlens.evaluation.comparison import TextTable
    from wanderlens.evaluation.job import EvaluationResult

console = Console()


def _parse_seeds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError as exc:
        raise ConfigError(f"--seeds {text!r}: give comma-separated integers, e.g. 0,1,2") from exc


def rich_table(table: TextTable) -> Table:
    """A plain `TextTable` drawn as a rich Table."""
    out = Table(title=table.title)
    for name, right in zip(table.columns, table.right_aligned, strict=True):
        out.add_column(name, justify="right" if right else "left")
    for row in table.rows:
        out.add_row(*row)
    return out


def print_result(result: EvaluationResult, out: Console) -> None:
    """The comparison table and the Δm table (mean±std over seeds), then where the report is."""
    from wanderlens.evaluation.comparison import comparison_rows, delta_rows

    out.print(rich_table(comparison_rows(result.comparison)))
    deltas = delta_rows(result.deltas)
    if deltas is not None:
        out.print(rich_table(deltas))
    out.print(f"[bold green]Report:[/] {result.report}  ({result.seconds:.0f} s)")


def evaluate(
    features: Path = typer.Option(..., "--features", help="Folder written by 'wanderlens featurize --out'."),
    config: Path = typer.Option(None, "--config", help="Config file (YAML/TOML): tasks, model, evaluation."),
    out: Path = typer.Option(..., "--out", help="Report folder: report.html, metrics.csv, model, split."),
    seeds: str = typer.Option(None, help="Comma-separated model seeds (default: evaluation.seeds)."),
    photos: Path = typer.Option(None, help="Ingest output folder, for the quarantine summary in the report "
                                           "(default: evaluation.photos_dir)."),
    travel: Path = typer.Option(None, help="Travel output folder: photo descriptions shown in the gallery."),
    set_: list[str] = typer.Option(None, "--set", help="Config override, e.g. --set training.epochs=5 (repeatable)."),
    master: str = typer.Option(None, help="Spark master URL (default: local[*] or WANDERLENS_SPARK_MASTER)."),
) -> None:
    """Train and compare every variant on one seeded split; print the table and write report.html."""
    from wanderlens.cli.options import flag_overrides
    from wanderlens.cli.progress import CommandProgress
    from wanderlens.config import load_config
    from wanderlens.evaluation.job import evaluate_job
    from wanderlens.session import get_spark

    flags = {"seeds": _parse_seeds(seeds), "photos_dir": str(photos) if photos else None}
    cfg = load_config(config, [*(set_ or []), *flag_overrides("evaluation", flags)])
    spark = get_spark(master=master)
    with CommandProgress("evaluate", console, spark=spark) as progress:
        result = evaluate_job(spark, features, cfg, out, travel_dir=travel, progress=progress.stage)
    print_result(result, console)


def register(app: typer.Typer) -> None:
    """Add `wanderlens evaluate` to the CLI."""
    app.command()(evaluate)
