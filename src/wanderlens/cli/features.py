"""`wanderlens featurize`: photos table -> features table (image + text embeddings, fused), with progress."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


class _SparkTaskProgress:
    """Polls Spark's status tracker and shows the running stages' finished / total tasks on a rich bar."""

    def __init__(self, spark, progress: Progress) -> None:
        self.tracker = spark.sparkContext.statusTracker()
        self.progress = progress
        self.task = progress.add_task("spark tasks", total=None)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                done = total = 0
                for sid in self.tracker.getActiveStageIds():
                    info = self.tracker.getStageInfo(sid)
                    if info is not None:
                        done += info.numCompletedTasks
                        total += info.numTasks
                self.progress.update(self.task, completed=done, total=total or None)
            except Exception:  # noqa: BLE001 - progress display must never break the job
                pass

    def __enter__(self) -> _SparkTaskProgress:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=2)


def register(app: typer.Typer) -> None:
    """Add the `featurize` command to the CLI."""

    @app.command("featurize")
    def featurize_cmd(
        photos: Path = typer.Option(..., "--photos",
                                    help="Ingest output folder (holding photos/) or the photos table itself."),
        out: Path = typer.Option(..., "--out", help="Output folder: features/, feature_pipeline/, summary.json."),
        config: Path = typer.Option(None, "--config", help="YAML/TOML config; its 'features' section is used."),
        overrides: list[str] = typer.Option(None, "--set", help="Override a config key, e.g. features.top_k=3."),
        encoder: str = typer.Option(None, help="Image encoder: efficientnet_lite0, torch, color_texture, "
                                                "onnx:/path/model.onnx."),
        batch_size: int = typer.Option(None, min=1, help="Images / sentences per model call."),
        image_size: int = typer.Option(None, min=0, help="Model input side in pixels (0: the encoder's own)."),
        top_k: int = typer.Option(None, min=0, help="ImageNet labels kept per photo."),
        num_features: int = typer.Option(None, min=16, help="HashingTF buckets for the TF-IDF text vector."),
        cache_dir: Path = typer.Option(None, help="Image-embedding cache folder (default OUT/cache)."),
        master: str = typer.Option(None, help="Spark master URL (default local[*] or WANDERLENS_SPARK_MASTER)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    ) -> None:
        """Embed images (cached by content hash), featurize caption + tags, fuse, and save the fitted pipeline."""
        from wanderlens.config import apply_overrides, load_config
        from wanderlens.features.featurize import featurize
        from wanderlens.session import get_spark

        cfg = apply_overrides(load_config(config), overrides)
        section = dict(cfg.get("features") or {})
        flags = {"encoder": encoder, "batch_size": batch_size, "image_size": image_size, "top_k": top_k,
                 "num_features": num_features, "cache_dir": str(cache_dir) if cache_dir else None}
        section.update({k: v for k, v in flags.items() if v is not None})
        spark = get_spark(master=master)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress, _SparkTaskProgress(spark, progress):
            step = progress.add_task("starting", total=None)

            def notify(message: str) -> None:
                progress.update(step, description=message)
                progress.console.print(f"[dim]-[/] {message}")

            summary = featurize(spark, photos, out, {"features": section}, progress=notify)
        if as_json:
            print(json.dumps(summary, indent=2))
            return
        console.print(
            f"[bold green]featurized[/] {summary['rows']} photos: {summary['images_computed']} images embedded, "
            f"{summary['images_cached']} from cache, {summary['image_errors']} without a usable image, "
            f"{summary['text_missing']} without text; features {summary['features_dim']}-d "
            f"({summary['seconds']} s)"
        )
        console.print(f"features: {summary['features']}\npipeline: {summary['feature_pipeline']}")
