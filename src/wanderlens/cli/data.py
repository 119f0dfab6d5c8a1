"""Data commands: `sample` (synthetic collection), `ingest` (validate + quarantine), `import-coco`, `import-folder`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from wanderlens.data.probe import DEFAULT_MAX_PIXELS
from wanderlens.errors import InputError

console = Console(stderr=True)


def _summary_table(summary: dict) -> Table:
    table = Table(title="ingest summary")
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_row("in", str(summary["rows_in"]))
    table.add_row("kept", str(summary["rows_kept"]))
    table.add_row("quarantined", str(summary["rows_quarantined"]))
    for reason, n in summary["by_reason"].items():
        table.add_row(f"  {reason}", str(n))
    return table


def sample_cmd(
    out: Path = typer.Option(..., "--out", help="Folder for manifest.csv, labels.yaml, destinations.csv, images/."),
    photos: int = typer.Option(2000, "--photos", min=1, help="Number of photos (a few are deliberately broken)."),
    users: int = typer.Option(60, "--users", min=1, help="Number of synthetic travellers."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same files."),
) -> None:
    """Generate the SYNTHETIC travel collection (procedural images, captions, users, trips)."""
    from wanderlens.cli.progress import CommandProgress
    from wanderlens.data.sample import generate_sample

    with CommandProgress("sample", console, total=photos, log_stages=False) as progress:
        progress.stage("rendering photos", total=photos)
        summary = generate_sample(out, photos=photos, users=users, seed=seed,
                                  progress=lambda done, total: progress.update(done, total))
    console.print(f"[green]sample written[/]: {summary['photos']} rows ({summary['broken']} deliberately broken), "
                  f"{summary['users']} users, {summary['destinations_count']} destinations")
    console.print(f"manifest: {summary['manifest']}\nlabels: {summary['labels']}\n"
                  f"destinations: {summary['destinations']}")


def ingest_cmd(
    manifest: Path = typer.Option(..., "--manifest", help="Photo manifest: .csv, .jsonl or .parquet."),
    out: Path = typer.Option(..., "--out", help="Output folder: photos/, quarantine/, labels.json, summary.json."),
    labels: Path = typer.Option(None, "--labels", help="Label declaration (default: labels.yaml beside it)."),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", min=1,
                                   help="Decompression-bomb cap: images with more pixels are quarantined."),
    header_only: bool = typer.Option(False, "--header-only",
                                     help="Skip the reduced-size decode (structural checks only)."),
    master: str = typer.Option(None, "--master", help="Spark master URL (default local[*])."),
    driver_memory: str = typer.Option(None, "--driver-memory", help="Spark driver memory, e.g. 4g."),
) -> None:
    """Validate the manifest and its images on Spark; keep good rows, quarantine the rest with a reason."""
    from wanderlens.cli.progress import CommandProgress
    from wanderlens.data.ingest import ingest
    from wanderlens.session import get_spark

    if not manifest.exists():
        raise InputError(f"manifest not found: {manifest} (pass an existing .csv, .jsonl or .parquet file)")
    with CommandProgress("ingest", console, log_stages=False) as progress:
        progress.stage("starting Spark")
        spark = get_spark(master=master, app_name="wanderlens-ingest", driver_memory=driver_memory)
        progress.stage("ingesting (opening every image on the executors)")
        summary = ingest(spark, manifest, out, labels=labels, max_pixels=max_pixels, decode=not header_only)
    Console().print(_summary_table(summary))
    console.print(f"photos: {summary['photos']}\nquarantine: {summary['quarantine']}\n"
                  f"summary: {out / 'summary.json'}")


def import_coco_cmd(
    captions: Path = typer.Option(..., "--captions", help="COCO captions JSON (captions_*.json)."),
    out: Path = typer.Option(..., "--out", help="Folder for manifest.jsonl and labels.yaml."),
    instances: Path = typer.Option(None, "--instances", help="COCO instances JSON: adds the 'objects' labels."),
    images: Path = typer.Option(None, "--images", help="Image folder (default: images/ beside the captions)."),
) -> None:
    """Turn a COCO captions (+ instances) set into a manifest that `wanderlens ingest` reads."""
    from wanderlens.data.importers import import_coco

    summary = import_coco(captions, out, instances=instances, images_dir=images)
    console.print(f"[green]imported[/] {summary['photos']} photos, {summary['captions']} captions, "
                  f"{summary['categories']} object categories\nmanifest: {summary['manifest']}")


def import_folder_cmd(
    root: Path = typer.Option(..., "--root", help="ROOT/<class>/<image> tree."),
    out: Path = typer.Option(..., "--out", help="Folder for manifest.csv and labels.yaml."),
    label: str = typer.Option("label", "--label", help="Name of the multiclass label column."),
) -> None:
    """Turn a folder-per-class image tree into a manifest with one multiclass label."""
    from wanderlens.data.importers import import_folder

    summary = import_folder(root, out, label=label)
    console.print(f"[green]imported[/] {summary['photos']} photos in {len(summary['classes'])} classes "
                  f"({summary['skipped_files']} non-image files skipped)\nmanifest: {summary['manifest']}")


def register(app: typer.Typer) -> None:
    """Add the data commands to the CLI."""
    app.command("sample")(sample_cmd)
    app.command("ingest")(ingest_cmd)
    app.command("import-coco")(import_coco_cmd)
    app.command("import-folder")(import_folder_cmd)
