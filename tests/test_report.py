"""``report.md`` and the self-contained ``report.html`` of a scripted run, rendered by headless Chromium."""

import base64
import json
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import tutelage
from tutelage.cli.report import compare_command, report_command
from tutelage.evals.compare import load_attempts, load_scores
from tutelage.evals.report.markdown import CREDIT_RULE
from tutelage.evals.stats import bootstrap_ci, paired_compare
from tutelage.testing import ScriptedServer, last_demo_answer

from .conftest import scripted_config, teacher_reply

runner = CliRunner()
app = typer.Typer()
app.command("report")(report_command)
app.command("compare")(compare_command)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FIGURES = ("scores", "lessons", "cost", "slices")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished two-round scripted run whose memory the report can open (hash embeddings over HTTP)."""
    tmp = tmp_path_factory.mktemp("report")
    with ScriptedServer(last_demo_answer) as student, ScriptedServer(teacher_reply) as teacher:
        cfg = scripted_config(
            tmp,
            student.api_base,
            teacher.api_base,
            "memory.embedder.provider=openai",
            f"memory.embedder.api_base={student.api_base}",
            "memory.embedder.model=hash",
        )
        return tutelage.run(cfg).run_dir


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / run_dir.name
    shutil.copytree(run_dir, target)
    return target


def test_the_loop_writes_report_md_and_a_self_contained_report_html(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    md = (run_dir / "report.md").read_text()
    for name in FIGURES:
        png = (run_dir / "report_files" / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and base64.b64encode(png).decode() in html  # the same figure
        assert f"](report_files/{name}.png)" in md
    assert re.search(r"(?:src|href)\s*=\s*[\"']?(?:https?:|//)", html) is None
    assert "http://" not in html and "https://" not in html  # nothing at all points off the page
    assert len(re.findall(r"<img ", html)) == len(FIGURES)


def test_the_headline_numbers_are_the_statistics_of_the_test_journals(run_dir: Path) -> None:
    before, after = load_scores(run_dir, when="before"), load_scores(run_dir)
    md = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    for scores in (before, after):
        iv = bootstrap_ci([scores[i] for i in sorted(scores)])
        assert f"{100 * iv.mean:.1f}% [{100 * iv.low:.1f}, {100 * iv.high:.1f}]" in md
    paired = paired_compare(before, after).describe().removeprefix("B − A = ")
    assert f"after − before: {paired}" in md and escape(f"after − before: {paired}") in html
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for row in metrics["rounds"]:  # every round's dev score with its interval, kept or rolled back
        dev = load_scores(run_dir, round_no=row["round"])
        iv = bootstrap_ci([dev[i] for i in sorted(dev)])
        kept = "yes" if row["accepted"] else "no"
        assert f"| {100 * iv.mean:.1f}% [{100 * iv.low:.1f}, {100 * iv.high:.1f}] | {kept} |" in md
    assert "## Per-slice test deltas (intent)" in md and "Holm p" in html


def test_the_lessons_that_helped_most_follow_the_stated_rule(run_dir: Path) -> None:
    before = load_scores(run_dir, when="before")
    after = load_attempts(run_dir)
    net: dict[str, int] = {}
    for task_id, attempt in after.items():
        for lesson_id in set(attempt.lesson_ids):
            net[lesson_id] = (
                net.get(lesson_id, 0) + (attempt.score > before[task_id]) - (attempt.score < before[task_id])
            )
    html = (run_dir / "report.html").read_text()
    assert escape(CREDIT_RULE) in html
    best = max(net.values())
    assert best > 0, "the scripted student learns from the examples it is shown"
    top = sorted((i for i, v in net.items() if v == best))[0]
    assert f"<code>{top}</code>" in html
    assert f"<td class=n>{best:+d}</td>" in html


def test_report_rewrites_the_reports_of_a_partial_run(run_dir: Path, tmp_path: Path) -> None:
    partial = _copy(run_dir, tmp_path)
    for name in ("report.md", "report.html", "metrics.json", "evals/test_after.jsonl"):
        (partial / name).unlink()
    shutil.rmtree(partial / "report_files")
    result = runner.invoke(app, ["report", str(partial)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "report.html" in result.output
    assert "has not run yet" in (partial / "report.md").read_text()
    assert (partial / "report_files" / "scores.png").is_file()
    assert "Stopped: running." in (partial / "report.md").read_text()


def test_report_of_a_directory_that_is_not_a_run_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "not a tutelage run directory" in lines[0]


def _png_colours(path: Path) -> int:
    from PIL import Image

    with Image.open(path) as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours) if colours is not None else 1 << 20


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed: apt-get install chromium")
def test_chromium_renders_the_page_and_every_figure(run_dir: Path, tmp_path: Path) -> None:
    copy = _copy(run_dir, tmp_path)
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    page = (copy / "report.html").resolve().as_uri()
    flags = [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    flags += [f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([*flags, "--dump-dom", page], capture_output=True, text=True, timeout=60, check=True)
    check = re.search(r'id="image-check" data-images="(\d+)" data-loaded="(-?\d+)"', dom.stdout)
    assert check is not None, dom.stdout[-2000:]
    assert check.groups() == (str(len(FIGURES)), str(len(FIGURES)))  # the load handler saw every image decode
    assert f"[figures {len(FIGURES)}/{len(FIGURES)}]</title>" in dom.stdout
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*flags, "--window-size=1100,2400", f"--screenshot={shot}", page],
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert shot.read_bytes().startswith(b"\x89PNG")
    assert _png_colours(shot) > 50  # text, tables and plots, not a blank page
