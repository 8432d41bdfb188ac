"""``tutelage export-finetune``: the union of a run's per-round fine-tune sets, written to one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from tutelage.cli._common import _env, _guard, console

__all__ = ["app", "export_finetune_command"]

app = typer.Typer()


@app.command("export-finetune")
def export_finetune_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="the run directory to export from")],
    out_dir: Annotated[
        Path | None, typer.Option("-o", "--out-dir", help="where to write (default: RUN_DIR/finetune/all)")
    ] = None,
    metadata: Annotated[
        bool, typer.Option("--metadata/--no-metadata", help="keep each row's provenance (a 'metadata' key)")
    ] = True,
) -> None:
    """Write sft.jsonl and preference.jsonl: every round's rows, each once, checked against the test split."""
    _env()
    from tutelage.train.datasets import export_finetune

    out = out_dir if out_dir is not None else run_dir / "finetune" / "all"
    counts = _guard(lambda: export_finetune(run_dir, out, metadata=metadata))
    console.print(
        Text(
            f"exported {counts['sft']} SFT rows and {counts['preference']} preference rows from "
            f"{counts['rounds']} rounds to {out} ({counts['duplicates']} duplicates across rounds dropped)"
        )
    )
