"""`wanderlens featurize`: photos table -> features table (image + text embeddings, fused), with progress."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def featurize_cmd(
    photos: Path = typer.Option(..., "--photos",
                                help="Ingest output folder (holding photos/) or the photos table itself."),
    out: Path = typer.Option(..., "--out", help="Output folder: features/, feature_pipeline/, summary.json."),
    config: Path = typer.Option(None, "--config", help="YAML/TOML config; its 'features' section is used."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a config key, e.g. features.top_k=3."),
    encoder: str = typer.Option(None, help="Image encoder: efficientnet_lite0, torch, color_texture, "
                                           "onnx:/path/model.onnx (default: features.encoder)."),
    batch_size: int = typer.Option(None, min=1, help="Images / sentences per model call (features.batch_size)."),
    image_size: int = typer.Option(None, min=0, help="Model input side in pixels (features.image_size)."),
    top_k: int = typer.Option(None, min=0, help="ImageNet labels kept per photo (features.top_k)."),
    num_features: int = typer.Option(None, min=16, help="HashingTF buckets of the TF-IDF text vector "
                                                        "(features.num_features)."),
    cache_dir: Path = typer.Option(None, help="Embedding cache folder (features.cache_dir; default OUT/cache)."),
    master: str = typer.Option(None, help="Spark master URL (default local[*] or WANDERLENS_SPARK_MASTER)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Embed images (cached by content hash), featurize caption + tags, fuse, and save the fitted pipeline."""
    from wanderlens.cli.options import flag_overrides
    from wanderlens.cli.progress import CommandProgress
    from wanderlens.config import load_config
    from wanderlens.features.featurize import featurize
    from wanderlens.session import get_spark

    flags = {"encoder": encoder, "batch_size": batch_size, "image_size": image_size, "top_k": top_k,
             "num_features": num_features, "cache_dir": str(cache_dir) if cache_dir else None}
    cfg = load_config(config, [*(overrides or []), *flag_overrides("features", flags)])
    spark = get_spark(master=master)
    with CommandProgress("featurize", console, spark=spark) as progress:
        summary = featurize(spark, photos, out, cfg, progress=progress.stage)
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


def register(app: typer.Typer) -> None:
    """Add the `featurize` command to the CLI."""
    app.command("featurize")(featurize_cmd)
