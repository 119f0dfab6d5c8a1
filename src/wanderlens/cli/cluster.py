"""`wanderlens cluster start | stop | status`: a Spark standalone cluster on 127.0.0.1 for development and tests."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from wanderlens.cluster.standalone import DEFAULT_DIR, StandaloneCluster

console = Console()

DIR_HELP = "Folder for the cluster's pid files, logs and work dirs (default .wanderlens/cluster)."


def register(app: typer.Typer) -> None:
    """Add the `cluster` command group to the CLI."""
    group = typer.Typer(help="A local Spark standalone cluster (a Master and N Workers on 127.0.0.1).",
                        no_args_is_help=True)
    app.add_typer(group, name="cluster")

    @group.command("start")
    def start(
        workers: int = typer.Option(2, min=1, help="Number of Worker daemons."),
        cores: int = typer.Option(1, min=1, help="Cores each Worker offers."),
        memory: str = typer.Option("2g", help="Memory each Worker offers to executors (e.g. 2g, 1536m)."),
        port: int = typer.Option(7077, help="Master port (0: pick a free one)."),
        webui_port: int = typer.Option(8080, help="Master web UI port (0: pick a free one)."),
        dir: Path = typer.Option(DEFAULT_DIR, "--dir", help=DIR_HELP),
    ) -> None:
        """Start the Master and Workers and wait until every Worker has registered."""
        cluster = StandaloneCluster(dir)
        with console.status(f"starting a master and {workers} worker(s) ({cores} core(s), {memory} each)..."):
            state = cluster.start(workers=workers, cores=cores, memory=memory, port=port or None,
                                  webui_port=webui_port or None)
        console.print(f"[bold green]cluster up:[/] {state.master_url}  (web UI {state.webui_url})")
        console.print(f"logs and pids under {cluster.dir}")
        console.print(f"run any stage on it with --master {state.master_url} "
                      f"or export WANDERLENS_SPARK_MASTER={state.master_url}")
        if cluster.spark_conf()["spark.executor.memory"] != "1024m":
            console.print(f"note: Spark's default executor memory is 1g; to use each worker's {memory}, set "
                          f"spark.executor.memory={memory}")

    @group.command("stop")
    def stop(dir: Path = typer.Option(DEFAULT_DIR, "--dir", help=DIR_HELP)) -> None:
        """Stop what `cluster start` started from this folder (and nothing else)."""
        stopped = StandaloneCluster(dir).stop()
        if stopped:
            console.print("stopped: " + ", ".join(stopped))
        else:
            console.print(f"no running cluster started from {Path(dir).resolve()}")

    @group.command("status")
    def status(
        dir: Path = typer.Option(DEFAULT_DIR, "--dir", help=DIR_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print the status as JSON."),
    ) -> None:
        """Show the daemons' pids and what the Master sees (workers, running applications)."""
        info = StandaloneCluster(dir).status()
        if as_json:
            print(json.dumps(info, indent=2))
            return
        if "master_url" not in info:
            console.print(f"no cluster started from {info['dir']}")
            raise typer.Exit(1)
        console.print(f"master {info['master_url']}  web UI {info['webui_url']}  "
                      f"[{'green' if info['running'] else 'red'}]{'running' if info['running'] else 'down'}[/]")
        daemons = Table(title="daemons")
        for col in ("name", "pid", "running", "log"):
            daemons.add_column(col)
        for name, d in info["daemons"].items():
            daemons.add_row(name, str(d["pid"]), "yes" if d["running"] else "no", d["log"])
        console.print(daemons)
        workers = Table(title="workers (as the Master sees them)")
        for col in ("id", "state", "cores used", "memory used (MB)"):
            workers.add_column(col)
        for w in info["workers"]:
            workers.add_row(w["id"], w["state"], f"{w['cores_used']}/{w['cores']}",
                            f"{w['memory_used_mb']}/{w['memory_mb']}")
        console.print(workers)
        for a in info["applications"]:
            console.print(f"application {a['id']} {a['name']!r}: {a['state']}, {a['cores']} core(s)")
        if not info["running"]:
            raise typer.Exit(1)
