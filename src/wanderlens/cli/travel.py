"""Travel commands: `travel` (the whole travel job), `describe`, `trips`, `profiles`, `recommend`, `search`.

`travel` writes the tables; the others read them (pass `--travel DIR`, default runs/demo/travel), so one user or one
query is answered without recomputing anything. `travel` reads its settings from the config's `travel` section
(`--config`, `--set travel.key=value`); its own flags are shortcuts for those keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from wanderlens.errors import InputError

console = Console()
progress_console = Console(stderr=True)
DEFAULT_TRAVEL = Path("runs/demo/travel")

TravelOpt = typer.Option(DEFAULT_TRAVEL, "--travel", help="Folder written by 'wanderlens travel' (or the demo).")


def _print_table(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*r)
    console.print(table)


def travel_cmd(
    features: Path = typer.Option(..., "--features", help="Folder written by 'wanderlens featurize'."),
    model: Path = typer.Option(..., "--model", help="Folder written by 'wanderlens train'."),
    destinations: Path = typer.Option(None, "--destinations", help="Destinations catalog CSV (optional; without "
                                      "it the catalog is the cities the photos were taken in)."),
    novelty: Path = typer.Option(None, "--novelty", help="A saved novelty model (a registry version's "
                                 "artifacts/travel/novelty); default: fitted on the labelled photos."),
    out: Path = typer.Option(..., "--out", help="Output folder for the travel tables."),
    config: Path = typer.Option(None, "--config", help="YAML/TOML config; its 'travel' section is used."),
    overrides: list[str] = typer.Option(None, "--set", help="Override a config key, e.g. travel.max_gap_hours=48."),
    fact_threshold: float = typer.Option(None, help="Probability from which a description states a fact "
                                                    "(travel.description.fact_threshold)."),
    master: str = typer.Option(None, help="Spark master URL (default local[*] or WANDERLENS_SPARK_MASTER)."),
) -> None:
    """Describe photos, cut trips, build profiles, suggest destinations (with reasons), index for search."""
    from wanderlens.cli.options import flag_overrides
    from wanderlens.cli.progress import CommandProgress
    from wanderlens.config import load_config
    from wanderlens.session import get_spark
    from wanderlens.travel.job import run_travel

    cfg = load_config(config, [*(overrides or []),
                               *flag_overrides("travel.description", {"fact_threshold": fact_threshold})])
    spark = get_spark(master=master)
    with CommandProgress("travel", progress_console, spark=spark) as progress:
        paths = run_travel(spark, features, model, destinations, out, cfg, progress=progress.stage, novelty=novelty)
    _print_table("travel tables", ["table", "path"], [[name, path] for name, path in paths.items()])


def describe_cmd(
    travel: Path = TravelOpt,
    photo: str = typer.Option(None, "--photo", help="One photo id (default: the first --limit photos)."),
    user: str = typer.Option(None, "--user", help="Only this user's photos."),
    limit: int = typer.Option(10, "--limit", min=1, help="How many descriptions to print."),
) -> None:
    """Print photo descriptions (hedged by confidence)."""
    from wanderlens.travel.store import read_rows

    if photo:
        rows = read_rows(travel, "descriptions", "photo_id", photo)
        if not rows:
            raise InputError(f"photo {photo!r} not found in {travel}/descriptions")
    elif user:
        rows = read_rows(travel, "descriptions", "user_id", user)
    else:
        rows = read_rows(travel, "descriptions", columns=["photo_id", "user_id", "description"])
    _print_table("descriptions", ["photo", "description"],
                 [[r["photo_id"], r["description"]] for r in sorted(rows, key=lambda r: r["photo_id"])[:limit]])


def trips_cmd(travel: Path = TravelOpt, user: str = typer.Option(..., "--user", help="User id.")) -> None:
    """Print a user's trips with their summaries."""
    from wanderlens.travel.store import trips_for

    rows = trips_for(travel, user)
    if not rows:
        raise InputError(f"user {user!r} has no trips in {travel}/trips")
    _print_table(f"trips of {user}", ["trip", "start", "photos", "summary"],
                 [[r["trip_id"], str(r["start"])[:10], str(r["photos"]), r["summary"]] for r in rows])


def profiles_cmd(travel: Path = TravelOpt,
                 user: str = typer.Option(None, "--user", help="One user (default: all).")) -> None:
    """Print user profiles: interests, travel style, season."""
    from wanderlens.travel.store import read_rows

    cols = ["user_id", "photos", "trips", "top_labels", "style", "season"]
    rows = read_rows(travel, "profiles", "user_id", user, columns=cols) if user else \
        read_rows(travel, "profiles", columns=cols)
    if not rows:
        raise InputError(f"user {user!r} has no profile in {travel}/profiles")
    _print_table("profiles", cols, [[r["user_id"], str(r["photos"]), str(r["trips"]), ", ".join(r["top_labels"] or []),
                                     r["style"], str(r["season"])] for r in sorted(rows, key=lambda r: r["user_id"])])


def _more_suggestions(travel: Path, user: str, k: int, master: str | None) -> list[dict[str, Any]]:
    """k suggestions for one user from the saved recommender model (when the stored table holds fewer)."""
    from wanderlens.session import get_spark
    from wanderlens.travel.recommend import TravelRecommenderModel
    from wanderlens.travel.store import table_path

    spark = get_spark(master=master)
    model = TravelRecommenderModel.load(str(table_path(travel, "recommender")))
    return [r.asDict() for r in model.recommend(spark.createDataFrame([(user,)], "user_id string"), k).collect()]


def recommend_cmd(
    travel: Path = TravelOpt,
    user: str = typer.Option(..., "--user", help="User id."),
    k: int = typer.Option(10, "--k", min=1, help="Number of suggestions."),
    master: str = typer.Option(None, help="Spark master, used only when k exceeds the stored suggestions."),
) -> None:
    """Suggest destinations the user has not visited, each with its reasons."""
    from wanderlens.travel.store import suggestions_for

    rows = suggestions_for(travel, user, k)
    if len(rows) < k and (Path(travel) / "recommender").is_dir():
        rows = _more_suggestions(travel, user, k, master)
    _print_table(f"suggestions for {user}", ["#", "destination", "score", "why"],
                 [[str(r["rank"]), r["name"] + (f", {r['country']}" if r.get("country") else ""),
                   f"{r['score']:.2f}", r["reason"]] for r in rows])


def search_cmd(
    query: str = typer.Argument(..., help='Words to look for, e.g. "sunset over the sea".'),
    travel: Path = TravelOpt,
    k: int = typer.Option(10, "--k", min=1, help="Number of photos."),
) -> None:
    """Find photos matching a text query, captioned or not."""
    from wanderlens.travel.store import search

    _print_table(f"photos for {query!r}", ["#", "photo", "score", "caption", "description"],
                 [[str(i), r["photo_id"], f"{r['score']:.3f}", r.get("caption") or "", r.get("description") or ""]
                  for i, r in enumerate(search(travel, query, k), 1)])


def register(app: typer.Typer) -> None:
    """Add the travel commands to the CLI."""
    for name, command in (("travel", travel_cmd), ("describe", describe_cmd), ("trips", trips_cmd),
                          ("profiles", profiles_cmd), ("recommend", recommend_cmd), ("search", search_cmd)):
        app.command(name)(command)
