"""`wanderlens demo`: the whole job on a bundled synthetic sample, stage by stage, ending with where everything is.

Each stage is the same library call its own sub-command makes, with the same typed config (the packaged
configs/sample.yaml); a stage's outputs are the next stage's inputs, all under one folder (default runs/demo).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from wanderlens.cli.progress import CommandProgress
    from wanderlens.config import WanderlensConfig

console = Console()


class _Report:
    """What a demo stage reports: a new step (`report(msg)`, always shown) or a detail (`report.detail(msg)`, in a
    log file at most every few seconds), both under the demo's stage count."""

    def __init__(self, progress: CommandProgress, name: str, index: int, stages: int) -> None:
        self.progress, self.name, self.index, self.stages = progress, name, index, stages

    def __call__(self, message: str) -> None:
        self.progress.stage(f"{self.name}: {message}", total=self.stages, completed=self.index)

    def detail(self, message: str) -> None:
        self.progress.update(self.index, description=f"{self.name}: {message}")


Stage = tuple[str, Callable[[dict, _Report], Any]]


def _stages(out: Path, photos: int, users: int, seed: int, master: str | None,
            config: WanderlensConfig) -> list[Stage]:
    """The demo's stages in order; each takes and fills a shared `ctx` dict of outputs and reports to `notify`."""
    from wanderlens.session import get_spark

    def spark():
        return get_spark(master=master)

    def sample(ctx: dict, notify: _Report) -> None:
        from wanderlens.data.sample import generate_sample

        generate_sample(out / "sample", photos=photos, users=users, seed=seed)
        ctx["sample"] = out / "sample"

    def ingest(ctx: dict, notify: _Report) -> None:
        from wanderlens.data.ingest import ingest as run_ingest

        run_ingest(spark(), out / "sample" / "manifest.csv", out / "ingested")
        ctx["photos table"] = out / "ingested" / "photos"
        ctx["quarantine"] = out / "ingested" / "quarantine"

    def featurize(ctx: dict, notify: _Report) -> None:
        from wanderlens.features.featurize import featurize as run_featurize

        run_featurize(spark(), out / "ingested", out / "features", config, progress=notify)
        ctx["features table"] = out / "features" / "features"

    def train(ctx: dict, notify: _Report) -> None:
        from wanderlens.mtl.train import train_from_config

        train_from_config(spark(), out / "features", config, out / "model",
                          progress=lambda rec: notify.detail(f"epoch {rec['epoch']}"))
        ctx["model"] = out / "model"

    def travel(ctx: dict, notify: _Report) -> None:
        from wanderlens.travel.job import run_travel

        paths = run_travel(spark(), out / "features", out / "model", out / "sample" / "destinations.csv",
                           out / "travel", config, progress=notify)
        ctx.update({f"travel: {k}": v for k, v in dict(paths).items()})
        ctx["_travel_dir"] = out / "travel"

    def evaluate(ctx: dict, notify: _Report) -> None:
        from wanderlens.cli.evaluation import print_result
        from wanderlens.evaluation.job import evaluate_job

        result = evaluate_job(spark(), out / "features", config, out / "report", travel_dir=out / "travel",
                              progress=notify)
        print_result(result, console)
        ctx["report"] = result.report

    def register(ctx: dict, notify: _Report) -> None:
        from wanderlens.serving.registry import ModelRegistry

        registry = ModelRegistry(out / "registry")
        version = registry.register(out / "features" / "feature_pipeline", out / "model",
                                    metadata={"source": "wanderlens demo"}, travel_dir=out / "travel")
        registry.promote(version)
        ctx["registry (production)"] = f"{out / 'registry'} (version {version})"

    return [("sample", sample), ("ingest", ingest), ("featurize", featurize), ("train", train),
            ("travel", travel), ("evaluate", evaluate), ("register", register)]


def _config_path() -> Path:
    """The sample's config: shipped in the package, or the repository's configs/ in a source checkout."""
    from importlib.resources import files

    packaged = Path(str(files("wanderlens") / "configs" / "sample.yaml"))
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[3] / "configs" / "sample.yaml"


def demo_config(seed: int) -> WanderlensConfig:
    """The sample's config, with the comparison run once, on the demo's seed."""
    from wanderlens.config import load_config

    return load_config(_config_path(), [f"evaluation.seeds=[{int(seed)}]"])


def _print_outputs(ctx: dict[str, Any], timings: dict[str, float]) -> None:
    """Where every output is, what a traveller sees, and how long each stage took."""
    table = Table(title="wanderlens demo: outputs")
    table.add_column("output")
    table.add_column("where")
    for key, value in ctx.items():
        if not key.startswith("_"):
            table.add_row(key, str(value))
    console.print(table)
    if "_travel_dir" in ctx:
        from wanderlens.travel.store import showcase

        console.print("[bold]What a traveller sees[/] (descriptions, a trip, suggestions with reasons, a search):")
        for line in showcase(ctx["_travel_dir"]):
            console.print(f"  {line}")
    console.print("stage times: " + ", ".join(f"{k} {v:.0f}s" for k, v in timings.items()))
    if "report" in ctx:
        console.print(f"[bold green]Open the report:[/] {ctx['report']}")


def run_demo(out: Path, photos: int = 2000, users: int = 60, seed: int = 0, master: str | None = None) -> dict:
    """Run every stage on a fresh synthetic sample under `out`; returns the outputs by name."""
    from wanderlens.cli.progress import CommandProgress

    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ctx: dict[str, Any] = {}
    stages = _stages(out, photos, users, seed, master, demo_config(seed))
    timings: dict[str, float] = {}
    with CommandProgress("demo", console, total=len(stages), log_stages=False) as progress:
        for i, (name, stage) in enumerate(stages):
            progress.stage(name, total=len(stages), completed=i)
            t0 = time.perf_counter()
            stage(ctx, _Report(progress, name, i, len(stages)))
            timings[name] = time.perf_counter() - t0
        progress.update(len(stages), description="done")
    _print_outputs(ctx, timings)
    return ctx


def register(app: typer.Typer) -> None:
    """Add `wanderlens demo` to the CLI."""

    @app.command()
    def demo(
        out: Path = typer.Option(Path("runs/demo"), help="Folder for every output of the demo."),
        photos: int = typer.Option(2000, min=50, help="Number of synthetic photos."),
        users: int = typer.Option(60, min=2, help="Number of synthetic travellers."),
        seed: int = typer.Option(0, help="Seed for the sample and the models."),
        master: str = typer.Option(None, help="Spark master URL (default: local[*] or WANDERLENS_SPARK_MASTER)."),
    ) -> None:
        """Run the whole job on the bundled synthetic sample and print where the results are."""
        run_demo(out, photos=photos, users=users, seed=seed, master=master)
