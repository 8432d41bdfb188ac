"""Every file tutelage writes into a run folder goes through ``tutelage.runfiles`` (one module to swap
for an object store), whole files land atomically, and a torn journal line is never glued to the next."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import tutelage
from tutelage import runfiles
from tutelage.testing import HashEmbedder, ScriptedServer

from .conftest import scripted_config

PACKAGE = Path(tutelage.__file__).parent
# What writes a file, spelled any way the package does; runfiles.py itself and the test doubles aside.
WRITES = re.compile(
    r"(?<!runfiles)\.(write_text|write_bytes)\(|\.open\(\s*[\"'][wax]|\bopen\([^)]*[\"'][wax]b?[\"']"
    r"|os\.replace\(|os\.rename\(|shutil\.(rmtree|copy2?|copytree|move)\("
)
# Files libraries write themselves: LangGraph's SQLite checkpoints, Chroma's embedded store, the lock.
LIBRARY_OWNED = re.compile(r"^(checkpoints\.sqlite.*|memory/.*|\.lock)$")


def test_no_module_but_runfiles_writes_files() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "runfiles.py" or rel.startswith("testing/"):
            continue
        for n, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("#", 1)[0]
            if WRITES.search(code) and '"shutil.rmtree"' not in code:  # the sandbox's deny list
                offenders.append(f"{rel}:{n}: {line.strip()}")
    assert offenders == []


def test_every_file_a_run_leaves_was_written_through_runfiles(
    tmp_path: Path, teacher_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    landed: set[Path] = set()
    real = runfiles._landed

    def spy(path: Path) -> Path:
        landed.add(Path(path).resolve())
        return real(path)

    monkeypatch.setattr(runfiles, "_landed", spy)
    with ScriptedServer(model="student") as student:
        result = tutelage.run(
            scripted_config(tmp_path, student.api_base, teacher_server.api_base), embedder=HashEmbedder()
        )
    files = {p for p in result.run_dir.rglob("*") if p.is_file()}
    kept = {p.relative_to(result.run_dir).as_posix() for p in files}
    assert {"ledger.jsonl", "metrics.json", "report.md", "config.yaml", "programs/round_2.json"} <= kept
    unrouted = sorted(
        rel
        for p in files
        if p.resolve() not in landed
        and not LIBRARY_OWNED.match(rel := p.relative_to(result.run_dir).as_posix())
    )
    assert unrouted == []
    assert not [p for p in files if p.name.endswith(".tmp")]  # no temporary file left behind


def test_a_line_torn_by_a_kill_is_not_glued_to_the_next(tmp_path: Path) -> None:
    journal = tmp_path / "rounds" / "j.jsonl"
    runfiles.append_lines(journal, ['{"a": 1}'])
    with journal.open("a") as fh:
        fh.write('{"torn": ')  # the kill
    runfiles.append_lines(journal, ['{"b": 2}'])
    with runfiles.appending(journal) as sink:
        sink.line('{"c": 3}')
    assert journal.read_text().splitlines() == ['{"a": 1}', '{"torn": ', '{"b": 2}', '{"c": 3}']


def test_a_whole_file_is_replaced_or_left_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    runfiles.write_json(target, {"rounds": [1]})

    def killed(*_: object) -> None:
        raise KeyboardInterrupt  # a kill between writing the new bytes and moving them into place

    monkeypatch.setattr("os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        runfiles.write_json(target, {"rounds": [1, 2]})
    assert target.read_text() == '{\n  "rounds": [\n    1\n  ]\n}'
