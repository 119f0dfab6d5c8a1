"""`wanderlens demo`: the whole job on a bundled synthetic sample, stage by stage, ending with where everything is.

Each stage is the same library call its own sub-command makes, with the same typed config (the packaged
configs/sample.yaml); a stage's outputs are the next stage's inputs, all under one folder (default runs/demo).

`wanderlens demo --photos-dir DIR` runs the job on a folder of your own photos instead: import-photos (time,
place, captions from the files) -> ingest -> featurize (with the registry model's own fitted feature pipeline) ->
travel (the registry model, `--model production` by default, and its novelty model), with the destinations catalog
derived from the photos' cities. Real photos carry no labels: what such a collection gets is printed
(`UNLABELLED_NOTE`).
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
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ctx: dict[str, Any] = {}
    stages = _stages(out, photos, users, seed, master, demo_config(seed))
    return _run_stages(stages, ctx)


def _run_stages(stages: list[tuple[str, Any]], ctx: dict[str, Any]) -> dict[str, Any]:
    """Run the demo's stages in order under one progress display, then print where the outputs are."""
    from wanderlens.cli.progress import CommandProgress

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


UNLABELLED_NOTE = (
    "Your photos carry no labels, so nothing here was trained on them. Every photo gets: its time, place (city, "
    "region, country, offline) and trip; the ImageNet labels of the pretrained image encoder; its own caption and "
    "the captions of similar photos; and the claims (scene, attributes) of the trained model you chose "
    "(--model, default production), except for photos unlike the ones that model was trained on, whose claims "
    "are withheld and said to be. Suggestions name the cities photographed by the collection's travellers.")


def _photo_stages(photos_dir: Path, out: Path, version_dir: Path, user: str | None, master: str | None,
                  config: WanderlensConfig) -> list[Stage]:
    """The stages of `demo --photos-dir`: import, ingest, featurize with the version's pipeline, travel, and a
    registry of the folder's own (`OUT/registry`) that `wanderlens serve` answers from."""
    from wanderlens.session import get_spark

    def spark():
        return get_spark(master=master)

    def import_stage(ctx: dict, notify: _Report) -> None:
        from wanderlens.data.photos import import_photos

        report = import_photos(photos_dir, out / "imported", user=user, config=config.photos)
        console.print(report.summary_text())
        ctx["manifest"] = out / "imported" / "manifest.csv"

    def ingest(ctx: dict, notify: _Report) -> None:
        from wanderlens.data.ingest import ingest as run_ingest

        run_ingest(spark(), out / "imported" / "manifest.csv", out / "ingested")
        ctx["photos table"] = out / "ingested" / "photos"

    def featurize(ctx: dict, notify: _Report) -> None:
        from wanderlens.travel.job import apply_feature_pipeline

        apply_feature_pipeline(spark(), out / "ingested", version_dir / "artifacts" / "feature_pipeline",
                               out / "features")
        ctx["features table"] = out / "features" / "features"

    def travel(ctx: dict, notify: _Report) -> None:
        from wanderlens.travel.job import run_travel

        fitted = version_dir / "artifacts" / "travel"
        paths = run_travel(spark(), out / "features", version_dir / "artifacts" / "model", None, out / "travel",
                           config, progress=notify, fitted=fitted if fitted.is_dir() else None)
        ctx.update({f"travel: {k}": v for k, v in dict(paths).items()})
        ctx["_travel_dir"] = out / "travel"

    def register(ctx: dict, notify: _Report) -> None:
        from wanderlens.serving.registry import ModelRegistry

        # A registry of its own: the chosen model with this folder's travel tables, for the REST service and page.
        registry = ModelRegistry(out / "registry")
        art = version_dir / "artifacts"
        version = registry.register(art / "feature_pipeline", art / "model", travel_dir=out / "travel",
                                    data_dir=out / "features" / "features",
                                    metadata={"source": f"demo --photos-dir {photos_dir}", "model": str(version_dir)})
        registry.promote(version)
        ctx["serve it"] = f"wanderlens serve --registry {out / 'registry'}  (web page: http://127.0.0.1:8000/)"

    return [("import-photos", import_stage), ("ingest", ingest), ("featurize", featurize), ("travel", travel),
            ("register", register)]


def run_photos_demo(photos_dir: Path, out: Path, registry: Path, model: str = "production", user: str | None = None,
                    master: str | None = None, config: WanderlensConfig | None = None) -> dict:
    """The whole job on a folder of the user's photos with the registry's model `model` (alias or version)."""
    from wanderlens.config import load_config
    from wanderlens.errors import InputError
    from wanderlens.serving.registry import ModelRegistry

    if not Path(photos_dir).is_dir():
        raise InputError(f"--photos-dir {photos_dir} is not a folder of photos")
    if not (Path(registry) / "versions").is_dir():
        raise InputError(f"no model registry at {registry}: run 'wanderlens demo' first (it trains and registers "
                         "the sample's model), or pass --registry DIR")
    version_dir = ModelRegistry(registry).path(model)
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ctx: dict[str, Any] = {"model": f"{model} -> {version_dir}"}
    stages = _photo_stages(Path(photos_dir).resolve(), out, version_dir, user, master, config or load_config())
    console.print(UNLABELLED_NOTE)
    return _run_stages(stages, ctx)


def register(app: typer.Typer) -> None:
    """Add `wanderlens demo` to the CLI."""

    @app.command()
    def demo(
        out: Path = typer.Option(Path("runs/demo"), help="Folder for every output of the demo."),
        photos: int = typer.Option(2000, min=50, help="Number of synthetic photos."),
        users: int = typer.Option(60, min=2, help="Number of synthetic travellers."),
        seed: int = typer.Option(0, help="Seed for the sample and the models."),
        master: str = typer.Option(None, help="Spark master URL (default: local[*] or WANDERLENS_SPARK_MASTER)."),
        photos_dir: Path = typer.Option(None, "--photos-dir", help="A folder of your own photos (DIR/<user>/... for "
                                        "several people): import, ingest, featurize and travel with a registry "
                                        "model instead of the synthetic sample."),
        model: str = typer.Option("production", "--model", help="With --photos-dir: the registry model (alias or "
                                  "version) that describes the photos."),
        registry: Path = typer.Option(Path("runs/demo/registry"), "--registry", help="With --photos-dir: the model "
                                      "registry (the sample demo writes runs/demo/registry)."),
        user: str = typer.Option(None, "--user", help="With --photos-dir: every photo is this user's."),
    ) -> None:
        """Run the whole job on the bundled synthetic sample (or on --photos-dir) and print where the results are."""
        if photos_dir is not None:
            target = out if out != Path("runs/demo") else Path("runs/photos")
            run_photos_demo(photos_dir, target, registry, model=model, user=user, master=master)
            return
        run_demo(out, photos=photos, users=users, seed=seed, master=master)
