"""Entry point of the `wanderlens` command.

Each stage lives in its own module under `wanderlens.cli` and registers its sub-commands through
`register(app)`. Errors a user can cause are printed as one line (`error: ...`) with exit code 2.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from wanderlens.errors import WanderlensError

try:  # typer >= 0.20 vendors its own click; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_exceptions

_NO_ARGS = getattr(click_exceptions, "NoArgsIsHelpError", None) or click_exceptions.NoArgsIsHelp

app = typer.Typer(
    name="wanderlens",
    help="Multimodal, multi-task learning on Spark, and travel intelligence from photo collections.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Stage modules, in the order a job runs them; each defines `register(app: typer.Typer) -> None`.
STAGE_MODULES = [
    "wanderlens.cli.data",
    "wanderlens.cli.photos",
    "wanderlens.cli.features",
    "wanderlens.cli.mtl",
    "wanderlens.cli.tune",
    "wanderlens.cli.evaluation",
    "wanderlens.cli.travel",
    "wanderlens.cli.serving",
    "wanderlens.cli.cluster",
    "wanderlens.cli.demo",
]


def _register_all() -> None:
    for name in STAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # stage not built yet
                continue
            raise
        module.register(app)


_register_all()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; user errors and usage errors become one line on stderr and a non-zero exit."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        rv = app(args=argv, prog_name="wanderlens", standalone_mode=False)
    except _NO_ARGS:
        sys.exit(0)
    except click_exceptions.UsageError as exc:
        sub = exc.ctx.command_path.split(" ")[1:] if exc.ctx else []
        hint = f" (see 'wanderlens {' '.join(sub + ['--help'])}')"
        print(f"error: {exc.format_message()}{hint}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    except click_exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}".replace("\n", " "), file=sys.stderr)
        sys.exit(exc.exit_code or 1)
    except WanderlensError as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        sys.exit(2)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
