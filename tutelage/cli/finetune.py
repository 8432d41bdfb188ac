"""``tutelage export-finetune``: the union of a run's per-round fine-tune sets, written to one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from tutelage import runfiles
from tutelage.cli._common import _env, _guard, console

__all__ = ["app", "export_adapter_command", "export_finetune_command"]

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


@app.command("export-adapter")
def export_adapter_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="the run whose kept adapter to export")],
    out_dir: Annotated[Path, typer.Option("-o", "--out-dir", help="where to write")],
    merge: Annotated[
        bool,
        typer.Option("--merge", help="also write the base GGUF with the adapter merged in (F16 weights)"),
    ] = False,
) -> None:
    """Copy the kept program's adapter (PEFT folder for vLLM, GGUF LoRA for llama.cpp), optionally merged."""
    _env()

    def export() -> list[Path]:
        import json

        from tutelage.api import kept_program
        from tutelage.errors import RunDirError
        from tutelage.rundir import RunPaths
        from tutelage.train.gguf import merge_lora_gguf

        paths = RunPaths(run_dir)
        paths.require()
        adapter = json.loads(kept_program(paths).read_text()).get("adapter")
        if not adapter:
            raise RunDirError(
                f"{run_dir}'s kept program has no adapter (no round that trained weights was kept)"
            )
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        if adapter.get("path"):
            written.append(runfiles.copy_tree(Path(adapter["path"]), out_dir / "peft"))
        gguf = adapter["meta"].get("gguf")
        if gguf:
            written.append(runfiles.copy_file(Path(gguf), out_dir / "adapter.gguf"))
            if merge:
                if not str(adapter["base"]).endswith(".gguf"):
                    raise RunDirError(
                        f"--merge needs a GGUF base; {adapter['name']} was trained on {adapter['base']}"
                    )
                written.append(merge_lora_gguf(Path(adapter["base"]), Path(gguf), out_dir / "merged.gguf"))
        elif merge:
            raise RunDirError(f"adapter {adapter['name']} has no GGUF file to merge (a hosted model?)")
        runfiles.write_json(out_dir / "adapter.json", adapter)
        return written

    for path in _guard(export):
        console.print(Text(f"wrote {path}"))
