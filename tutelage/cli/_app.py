"""The root ``tutelage`` app: every command module mounted on one typer app, and the console entry."""

from __future__ import annotations

import typer

from tutelage.cli import finetune, memory, report, run

__all__ = ["app", "main"]

app = typer.Typer(
    help="tutelage: a teacher writes lessons, DSPy compiles a better student.", no_args_is_help=True
)
# Nameless sub-apps merge their commands into the root; `tutelage --help` lists them in this order.
app.add_typer(finetune.app)
app.add_typer(report.app)
app.add_typer(run.app)
app.add_typer(memory.app, name="memory")


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="tutelage")
