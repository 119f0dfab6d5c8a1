"""Travel commands: `travel` (the whole travel job), `describe`, `trips`, `profiles`, `recommend`, `search`.

`travel` writes the tables; the others read them (pass `--travel DIR`, default runs/demo/travel), so one user or one
query is answered without recomputing anything.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from wanderlens.errors import InputError

console = Console()
DEFAULT_TRAVEL = Path("runs/demo/travel")

TravelOpt = typer.Option(DEFAULT_TRAVEL, "--travel", help="Folder written by 'wanderlens travel' (or the demo).")


def register(app: typer.Typer) -> None:
    """Add the travel commands to the CLI."""

    @app.command("travel")
    def travel_cmd(
        features: Path = typer.Option(..., "--features", help="Folder written by 'wanderlens featurize'."),
        model: Path = typer.Option(..., "--model", help="Folder written by 'wanderlens train'."),
        destinations: Path = typer.Option(None, "--destinations", help="Destinations catalog CSV (optional)."),
        out: Path = typer.Option(..., "--out", help="Output folder for the travel tables."),
        fact_threshold: float = typer.Option(0.8, help="Probability from which a description states a fact."),
        content_weight: float = typer.Option(None, help="Share of content similarity in the suggestion blend "
                                             "(default: the travel job's, tuned by bench_travel)."),
        popularity_weight: float = typer.Option(None, help="Share of popularity in the suggestion blend (ALS gets "
                                                "the rest)."),
        master: str = typer.Option(None, help="Spark master URL (default local[*] or WANDERLENS_SPARK_MASTER)."),
    ) -> None:
        """Describe photos, cut trips, build profiles, suggest destinations (with reasons), index for search."""
        from wanderlens.session import get_spark
        from wanderlens.travel.job import run_travel

        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console) as progress:
            task = progress.add_task("starting Spark")
            paths = run_travel(get_spark(master=master), features, model, destinations, out,
                               {"fact_threshold": fact_threshold, **{k: v for k, v in (
                                   ("content_weight", content_weight), ("popularity_weight", popularity_weight))
                                   if v is not None}},
                               progress=lambda name: progress.update(task, description=name))
        table = Table(title="travel tables")
        table.add_column("table")
        table.add_column("path")
        for name, path in paths.items():
            table.add_row(name, path)
        console.print(table)

    @app.command("describe")
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
        table = Table(title="descriptions")
        table.add_column("photo")
        table.add_column("description")
        for r in sorted(rows, key=lambda r: r["photo_id"])[:limit]:
            table.add_row(r["photo_id"], r["description"])
        console.print(table)

    @app.command("trips")
    def trips_cmd(travel: Path = TravelOpt, user: str = typer.Option(..., "--user", help="User id.")) -> None:
        """Print a user's trips with their summaries."""
        from wanderlens.travel.store import trips_for

        rows = trips_for(travel, user)
        if not rows:
            raise InputError(f"user {user!r} has no trips in {travel}/trips")
        table = Table(title=f"trips of {user}")
        for c in ("trip", "start", "photos", "summary"):
            table.add_column(c)
        for r in rows:
            table.add_row(r["trip_id"], str(r["start"])[:10], str(r["photos"]), r["summary"])
        console.print(table)

    @app.command("profiles")
    def profiles_cmd(travel: Path = TravelOpt,
                     user: str = typer.Option(None, "--user", help="One user (default: all).")) -> None:
        """Print user profiles: interests, travel style, season."""
        from wanderlens.travel.store import read_rows

        cols = ["user_id", "photos", "trips", "top_labels", "style", "season"]
        rows = read_rows(travel, "profiles", "user_id", user, columns=cols) if user else \
            read_rows(travel, "profiles", columns=cols)
        if not rows:
            raise InputError(f"user {user!r} has no profile in {travel}/profiles")
        table = Table(title="profiles")
        for c in cols:
            table.add_column(c)
        for r in sorted(rows, key=lambda r: r["user_id"]):
            table.add_row(r["user_id"], str(r["photos"]), str(r["trips"]), ", ".join(r["top_labels"] or []),
                          r["style"], str(r["season"]))
        console.print(table)

    @app.command("recommend")
    def recommend_cmd(
        travel: Path = TravelOpt,
        user: str = typer.Option(..., "--user", help="User id."),
        k: int = typer.Option(10, "--k", min=1, help="Number of suggestions."),
        master: str = typer.Option(None, help="Spark master, used only when k exceeds the stored suggestions."),
    ) -> None:
        """Suggest destinations the user has not visited, each with its reasons."""
        from wanderlens.travel.store import suggestions_for, table_path

        rows = suggestions_for(travel, user, k)
        if len(rows) < k and (Path(travel) / "recommender").is_dir():
            from wanderlens.session import get_spark
            from wanderlens.travel.recommend import TravelRecommenderModel

            spark = get_spark(master=master)
            model = TravelRecommenderModel.load(str(table_path(travel, "recommender")))
            rows = [r.asDict() for r in model.recommend(spark.createDataFrame([(user,)], "user_id string"), k)
                    .collect()]
        table = Table(title=f"suggestions for {user}")
        for c in ("#", "destination", "score", "why"):
            table.add_column(c)
        for r in rows:
            place = r["name"] + (f", {r['country']}" if r.get("country") else "")
            table.add_row(str(r["rank"]), place, f"{r['score']:.2f}", r["reason"])
        console.print(table)

    @app.command("search")
    def search_cmd(
        query: str = typer.Argument(..., help='Words to look for, e.g. "sunset over the sea".'),
        travel: Path = TravelOpt,
        k: int = typer.Option(10, "--k", min=1, help="Number of photos."),
    ) -> None:
        """Find photos matching a text query, captioned or not."""
        from wanderlens.travel.store import search

        table = Table(title=f"photos for {query!r}")
        for c in ("#", "photo", "score", "caption", "description"):
            table.add_column(c)
        for i, r in enumerate(search(travel, query, k), 1):
            table.add_row(str(i), r["photo_id"], f"{r['score']:.3f}", r.get("caption") or "", r.get("description")
                          or "")
        console.print(table)
