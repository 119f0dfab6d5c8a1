"""`wanderlens import-photos DIR --out OUT`: a folder of real photos -> a manifest `wanderlens ingest` takes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

console = Console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add the `import-photos` command to the CLI."""

    @app.command("import-photos")
    def import_photos_cmd(
        folder: Path = typer.Argument(..., help="Folder of photos: one user's (with --user), or DIR/<user>/..."),
        out: Path = typer.Option(..., "--out", help="Output folder: manifest.csv, import_report.json/.txt."),
        user: str = typer.Option(None, "--user", help="All photos are this user's (else: one sub-folder per user)."),
        round_coordinates: int = typer.Option(None, "--round-coordinates", min=0, max=8,
                                              help="Keep this many decimals of latitude/longitude in the outputs "
                                                   "(2 = ~1 km) for privacy; places are named before rounding."),
        verify_pixels: bool = typer.Option(False, "--verify-pixels",
                                           help="Decode every photo (1/8 scale) to find corrupt image data."),
        config: Path = typer.Option(None, "--config", help="wanderlens config file (section `photos`)."),
        overrides: list[str] = typer.Option(None, "--set", help="Config override, e.g. photos.burst_seconds=10."),
    ) -> None:
        """Read time, place, captions and bursts from the photos' own metadata and sidecars; write a manifest."""
        from wanderlens.config import load_config
        from wanderlens.data.photos import import_photos

        cfg = load_config(config, overrides).photos
        if verify_pixels:
            cfg = cfg.model_copy(update={"verify_pixels": True})
        with console.status("reading photos"):
            report = import_photos(folder, out, user=user, round_coordinates=round_coordinates, config=cfg)
        Console().print(report.summary_text(), highlight=False, markup=False)
        console.print(f"next: wanderlens ingest --manifest {report.manifest} --out <folder>")
