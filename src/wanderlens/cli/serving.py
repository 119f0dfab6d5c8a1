"""CLI for deployment: `wanderlens models list|show|register|promote|rollback`, `serve`, `score`, `export mlflow`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from wanderlens.config import ServingConfig
from wanderlens.errors import WanderlensError
from wanderlens.serving.registry import DEFAULT_ALIAS

_SERVING = ServingConfig()  # the one place serve's option defaults come from
console = Console()
RegistryOpt = typer.Option(None, "--registry", envvar="WANDERLENS_REGISTRY",
                           help="Registry root folder (default runs/registry, or the demo's runs/demo/registry).")


def _registry(root: Path | None):
    """The registry at `root`; by default runs/registry, or runs/demo/registry when only the demo made one."""
    from wanderlens.serving.registry import ModelRegistry

    if root is None:
        root = Path("runs/registry")
        if not root.exists() and Path("runs/demo/registry").exists():
            root = Path("runs/demo/registry")
    return ModelRegistry(root)


def models_list(registry: Path | None = RegistryOpt) -> None:
    """List every version with its creation time, aliases and headline metrics."""
    reg = _registry(registry)
    aliases = reg.aliases()
    table = Table(title=f"models in {reg.root}")
    for col in ("version", "created", "aliases", "tasks / metrics", "data hash"):
        table.add_column(col)
    for v in reg.versions():
        meta = reg.metadata(v)
        metrics = meta.get("metrics") or {}
        headline = ", ".join(f"{k}={val:.3f}" if isinstance(val, float) else f"{k}={val}"
                             for k, val in list(_flatten(metrics).items())[:4])
        table.add_row(str(v), str(meta.get("created")), ",".join(a for a, x in aliases.items() if x == v),
                      headline, str(meta.get("data_snapshot_hash") or "")[:12])
    console.print(table)
    if not reg.versions():
        console.print("no versions yet: 'wanderlens models register' or 'wanderlens demo' adds one")


def models_show(ref: str = typer.Argument(DEFAULT_ALIAS, help="Version number, alias or 'latest'."),
                registry: Path | None = RegistryOpt) -> None:
    """Print one version's metadata (JSON) and whether its files still match their checksum."""
    reg = _registry(registry)
    meta = reg.metadata(ref)
    meta["files_intact"] = reg.verify(ref)
    print(json.dumps(meta, indent=2, sort_keys=True, default=str))


def models_register(
    feature_pipeline: Path = typer.Option(..., help="Fitted feature pipeline (features_out/feature_pipeline)."),
    model: Path = typer.Option(..., help="MultiTaskModel folder written by 'wanderlens train'."),
    travel: Path = typer.Option(None, help="Travel output folder (suggestions, search index) to serve too."),
    promote: bool = typer.Option(False, help="Point the production alias at the new version."),
    registry: Path | None = RegistryOpt,
) -> None:
    """Copy a trained model into the registry as a new immutable version."""
    reg = _registry(registry)
    with console.status("copying the model into the registry"):
        version = reg.register(feature_pipeline, model, travel_dir=travel)
    console.print(f"registered version {version} in {reg.root}")
    if promote:
        reg.promote(version)
        console.print(f"{DEFAULT_ALIAS} -> version {version}")


def models_promote(ref: str = typer.Argument(..., help="Version to promote (number or 'latest')."),
                   alias: str = typer.Option(DEFAULT_ALIAS, help="Alias to move."),
                   registry: Path | None = RegistryOpt) -> None:
    """Point an alias at a version (atomic; running servers reload within a second)."""
    reg = _registry(registry)
    version = reg.promote(reg.resolve(ref), alias=alias)
    console.print(f"{alias} -> version {version}")


def models_rollback(alias: str = typer.Option(DEFAULT_ALIAS, help="Alias to move back."),
                    registry: Path | None = RegistryOpt) -> None:
    """Point an alias back at the version it held before the last promote."""
    reg = _registry(registry)
    version = reg.rollback(alias=alias)
    console.print(f"{alias} -> version {version} (rolled back)")


def serve(
    model: str = typer.Option(DEFAULT_ALIAS, help="Alias or version number to serve."),
    port: int = typer.Option(_SERVING.port, min=0, max=65535, help="TCP port."),
    host: str = typer.Option(_SERVING.host, help="Interface to bind (default loopback only)."),
    registry: Path | None = RegistryOpt,
    token: str = typer.Option(None, envvar=_SERVING.token_env, help="Admin API token (reload, promote)."),
    max_mb: float = typer.Option(_SERVING.max_upload_mb, min=0.01, help="Largest request body in MB (413 above)."),
    max_pixels: int = typer.Option(_SERVING.max_pixels, min=1, help="Largest image in pixels (413 above)."),
    timeout: float = typer.Option(_SERVING.request_timeout_s, min=0.0001,
                                  help="Per-request time limit in seconds (504 above)."),
    workers: int = typer.Option(_SERVING.inference_workers, min=1,
                                help="Requests computed at once (one per core is best)."),
    encoder_threads: int = typer.Option(_SERVING.encoder_threads, min=1,
                                        help="Threads per request inside the ONNX/torch encoders."),
    max_uploads: int = typer.Option(_SERVING.max_concurrent_uploads, min=1,
                                    help="Photo uploads answered at once (503 + Retry-After above)."),
    batch_size: int = typer.Option(_SERVING.batch_max_size, min=1,
                                   help="Most describe requests run as one micro-batch (1 = one at a time)."),
    batch_wait_ms: float = typer.Option(_SERVING.batch_max_wait_ms, min=0.0, max=1000.0,
                                        help="How long a batch waits for more requests while the server is busy."),
    log_format: str = typer.Option(_SERVING.log_format, help="Log lines as 'text' or 'json'."),
    shutdown_timeout: float = typer.Option(_SERVING.shutdown_timeout_s, min=0.1,
                                           help="On SIGTERM, seconds in-flight requests may take to finish."),
) -> None:
    """Serve the REST API and web page for a registry model (reloads when its alias moves)."""
    settings = ServingConfig(host=host, port=port, max_upload_mb=max_mb, max_pixels=max_pixels,
                             request_timeout_s=timeout, inference_workers=workers, encoder_threads=encoder_threads,
                             max_concurrent_uploads=max_uploads, log_format=log_format,
                             batch_max_size=batch_size, batch_max_wait_ms=batch_wait_ms,
                             shutdown_timeout_s=shutdown_timeout,
                             log_level=os.environ.get("WANDERLENS_LOG_LEVEL", _SERVING.log_level))
    # Concurrent requests each run the encoders on `encoder_threads` threads: `workers` x 1 fills the cores
    # without the oversubscription that multi-threaded kernels per request cause (measured 15x slower MiniLM
    # under load with 2 threads per call on 2 cores).
    os.environ["WANDERLENS_ENCODER_THREADS"] = str(settings.encoder_threads)
    from wanderlens.serving.app import create_app, run_server

    reg = _registry(registry)
    reg.resolve(model)  # fail now, as one line, if the model is not there
    app_ = create_app(reg.root, model=model, token=token, settings=settings)
    console.print(f"serving {model} from {reg.root} on http://{host}:{port}/ (docs at /docs)")
    run_server(app_, settings)


def score(
    photos: Path = typer.Option(..., help="Folder of photos (searched recursively) or a manifest file."),
    out: Path = typer.Option(..., help="Output folder: predictions as Parquet (+ summary.json)."),
    model: str = typer.Option(DEFAULT_ALIAS, help="Alias or version number."),
    registry: Path | None = RegistryOpt,
    master: str = typer.Option(None, help="Spark master URL (default local[*] or WANDERLENS_SPARK_MASTER)."),
) -> None:
    """Score a photo collection of any size on Spark with a registry model."""
    from wanderlens.serving.scoring import score_photos
    from wanderlens.session import get_spark

    with console.status("scoring on Spark"):
        summary = score_photos(get_spark(master=master), _registry(registry), model, photos, out)
    console.print(f"scored {summary['rows']} photos with version {summary['model_version']} -> "
                  f"{summary['predictions']}")


def export_mlflow(
    model: str = typer.Option(DEFAULT_ALIAS, help="Alias or version number."),
    tracking_uri: str = typer.Option("sqlite:///runs/mlflow/mlflow.db", help="MLflow tracking store."),
    experiment: str = typer.Option("wanderlens", help="MLflow experiment name."),
    registry: Path | None = RegistryOpt,
) -> None:
    """Log a registry model to MLflow with the Spark flavor (needs the extra 'wanderlens[mlflow]')."""
    from wanderlens.serving.mlflow_export import export_to_mlflow

    uri = export_to_mlflow(_registry(registry), model, tracking_uri=tracking_uri, experiment=experiment)
    console.print(f"logged to MLflow: {uri}")


def register(app: typer.Typer) -> None:
    """Add the deployment commands to the CLI: `models ...`, `serve`, `score`, `export mlflow`."""
    models = typer.Typer(help="Model registry: immutable versions and the production alias.", no_args_is_help=True)
    for name, command in (("list", models_list), ("show", models_show), ("register", models_register),
                          ("promote", models_promote), ("rollback", models_rollback)):
        models.command(name)(command)
    app.add_typer(models, name="models")
    app.command()(serve)
    app.command()(score)
    export = typer.Typer(help="Export a registry model to other tools.", no_args_is_help=True)
    export.command("mlflow")(export_mlflow)
    app.add_typer(export, name="export")


def _flatten(d: object, prefix: str = "") -> dict[str, object]:
    if not isinstance(d, dict):
        return {prefix.rstrip("."): d} if prefix else {}
    out: dict[str, object] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        elif isinstance(v, int | float | str):
            out[f"{prefix}{k}"] = v
    return out


__all__ = ["register", "WanderlensError"]
