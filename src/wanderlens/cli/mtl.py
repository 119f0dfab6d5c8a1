"""`wanderlens train`: fit a multi-task model on a features table, with a progress bar per epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer


def register(app: typer.Typer) -> None:
    """Add the `train` command."""

    @app.command("train")
    def train(
        features: Path = typer.Option(..., "--features", help="featurize output folder (or the features table)"),
        config: Path = typer.Option(None, "--config", help="YAML/TOML config with tasks, model, training"),
        out: Path = typer.Option(..., "--out", help="folder to save the fitted MultiTaskModel in"),
        set_: list[str] = typer.Option(None, "--set", help="override a config key, e.g. training.epochs=5"),
        master: str = typer.Option(None, "--master", help="Spark master URL (default: local)"),
    ) -> None:
        """Train a multi-task model (architecture, tasks and loss weighting from the config) and save it."""
        from rich.console import Console

        from wanderlens.cli.progress import CommandProgress
        from wanderlens.config import load_config
        from wanderlens.mtl.train import train_from_config
        from wanderlens.session import get_spark

        cfg = load_config(config, set_)
        epochs = cfg.training.epochs
        console = Console(stderr=True)
        spark = get_spark(master=master)
        with CommandProgress("train", console, total=epochs, spark=spark, log_stages=False) as bar:
            bar.stage("checking input and writing shards", total=epochs)

            def on_epoch(rec: dict[str, Any]) -> None:
                losses = " ".join(f"{k}={v:.4f}" for k, v in rec["loss"].items())
                extra = f" val_loss={rec['val_loss']:.4f}" if "val_loss" in rec else ""
                bar.update(rec["epoch"], description=f"epoch {rec['epoch']}: {losses}{extra}")

            model = train_from_config(spark, features, cfg, out, progress=on_epoch)
            bar.update(epochs if not model.history else model.history[-1]["epoch"])
        last = model.history[-1] if model.history else {}
        val = " ".join(f"{t}:{ {k: round(v, 4) for k, v in m.items() if k != 'n'} }"
                       for t, m in last.get("val", {}).items())
        console.print(f"saved model to {out} ({len(model.history)} epochs) {val}")
