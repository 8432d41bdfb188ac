"""Chaos: random kills, injected endpoint faults, fuzzed inputs and sandbox attacks, one table of counts.

Every case runs against scripted endpoints (``tutelage.testing``), offline, on the same small one-round
Banking77 run (40 train, 10 dev, 12 test items):

- kills: the run is SIGKILLed, half the time at a random moment of its wall time, half the time at a
  random failpoint (``node:start|middle|end`` of any of the 16 nodes); a resume may be killed again
  (30%); then ``tutelage resume`` runs to the end. Handled: the final scores, decisions and every
  lesson with its status equal an uninterrupted run's, and a second resume changes nothing.
- faults: every fault class the scripted endpoint injects (HTTP 500, 429, 503, a dropped connection,
  a hung reply, a non-JSON body, empty choices, null content, a 1 MB reply) on each role, once and on
  a fixed fifth of the requests. Handled: the run finishes, every request the endpoint saw is a ledger
  row, a fault a retry cures leaves the clean run's scores, a persistent fault is a recorded failure.
- fuzz: hostile values for config keys (``--set``), whole config files, suite files (JSONL and CSV)
  and lesson imports, through the CLI. Handled: exit status 0, 1 or 2 with no traceback, and a
  failure says so in one line.
- sandbox: the attacks on the Python tool (guard switched off from inside, network, the parent's
  environment through /proc, files outside the working directory, a process that outlives the
  snippet, a fork bomb). Handled: each is contained.

    .venv/bin/python bench/chaos.py                      # 50 kills, all faults, 100 fuzzed inputs
    .venv/bin/python bench/chaos.py --kills 5 --fuzz 20 --classes kills,fuzz   # a quick look
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import yaml  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import tutelage  # noqa: E402
from tutelage.agents.ledger import Ledger  # noqa: E402
from tutelage.cli import app  # noqa: E402
from tutelage.config import load_config  # noqa: E402
from tutelage.failpoints import ENV  # noqa: E402
from tutelage.testing import (  # noqa: E402
    FAULTS,
    HashEmbedder,
    ScriptedServer,
    last_demo_answer,
    run_cli,
    run_fingerprint,
)
from tutelage.tools.sandbox import MAX_PROCESSES, run_python  # noqa: E402

NODES = [
    "start", "test_before", "sample_batch", "attempt", "grade", "diagnose", "write_lessons",
    "verify_lessons", "curate", "compile", "train_weights", "evaluate_dev", "monitor", "decide", "finetune_sets",
    "record_round", "test_after",
]  # fmt: skip
SMALL = [
    "suite.train_size=40", "suite.dev_size=10", "suite.test_size=12", "loop.rounds=1",
    "loop.batch_size=12", "loop.search_size=4", "loop.search_k=[1, 2]", "loop.search_strategies=[0]",
]  # fmt: skip
TEACHER = "DIAGNOSIS: The student copied a similar example.\nSTRATEGY: Look at the action asked for."
DEAD = "http://127.0.0.1:9/v1"  # nothing listens on the discard port


def _overrides(root: Path, student: str, teacher: str, *extra: str) -> list[str]:
    return [
        f"runs_dir={root / 'runs'}", "name=chaos", "student.provider=openai", f"student.api_base={student}",
        "student.model=student", "teacher.provider=openai", f"teacher.api_base={teacher}",
        "teacher.model=teacher",
        "memory.embedder.provider=openai", f"memory.embedder.api_base={student}", *SMALL, *extra,
    ]  # fmt: skip


def _config_file(root: Path, student: str, teacher: str, *extra: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    cfg = load_config(None, _overrides(root, student, teacher, *extra))
    path = root / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return path


# -- kills ----------------------------------------------------------------------------------------


def kills(n: int, rng: random.Random, work: Path) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    notes: list[str] = []
    with ScriptedServer(last_demo_answer) as s, ScriptedServer(lambda r: TEACHER) as t:
        began = time.monotonic()
        straight = _config_file(work / "straight", s.api_base, t.api_base)
        assert run_cli(["run", str(straight)]) == 0, "the uninterrupted run failed"
        span = time.monotonic() - began
        want = run_fingerprint(load_config(straight).run_dir)
        nodes_hit: Counter[str] = Counter()
        for i in range(n):
            path = _config_file(work / f"kill-{i}", s.api_base, t.api_base)
            run_dir = load_config(path).run_dir
            if i % 2 == 0:
                at = rng.uniform(0.3, span)
                how, code = f"at {at:.1f} s", run_cli(["run", str(path)], kill_after=at)
            else:  # every node in turn, at a random moment of it
                node = NODES[(i // 2) % len(NODES)]
                when = rng.choice(["start", "end", f"middle:{rng.randint(1, 3)}"])
                how, code = f"{node}:{when}", run_cli(["run", str(path)], env={ENV: f"{node}:{when}"})
            if code == -9:
                nodes_hit[_where(run_dir)] += 1
            if rng.random() < 0.3 and run_dir.exists():  # kill the resume too
                run_cli(["resume", str(run_dir)], kill_after=rng.uniform(0.5, span))
            counts["tried"] += 1
            if not (run_dir / "checkpoints.sqlite").exists():
                # Killed before anything ran: the run directory holds no run to resume; start again.
                ok = run_cli(["run", str(path)]) == 0 and run_fingerprint(_only_run(path)) == want
            else:
                ok = run_cli(["resume", str(run_dir)]) == 0 and run_fingerprint(run_dir) == want
                ok = ok and run_cli(["resume", str(run_dir)]) == 0 and run_fingerprint(run_dir) == want
            counts["handled" if ok else "failed"] += 1
            if not ok:
                notes.append(f"kill {i} ({how}): resumed run differs from the uninterrupted one ({run_dir})")
        hit = sorted(n for n in nodes_hit if n in NODES)
        notes.append(f"kills: uninterrupted run {span:.1f} s; killed in {len(hit)} of {len(NODES)} nodes")
        notes.append(f"kills by node: {dict(nodes_hit)}")
    return counts, notes


def _where(run_dir: Path) -> str:
    """The node a kill interrupted, from the run's last checkpoint (its pending task)."""
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    from tutelage.loop.graph import build_graph
    from tutelage.rundir import RunPaths

    if not (run_dir / "checkpoints.sqlite").exists():
        return "before the first checkpoint"
    conn = sqlite3.connect(run_dir / "checkpoints.sqlite", check_same_thread=False)
    try:
        tasks = (
            build_graph(SqliteSaver(conn))
            .get_state({"configurable": {"thread_id": RunPaths(run_dir).thread_id}})
            .tasks
        )
    finally:
        conn.close()
    return tasks[0].name if tasks else "before the first checkpoint"


def _only_run(path: Path) -> Path:
    runs = sorted((path.parent / "runs").iterdir(), key=lambda p: p.stat().st_mtime)
    return next(r for r in reversed(runs) if (r / "metrics.json").exists())


# -- faults ---------------------------------------------------------------------------------------


def _a_fifth(body: dict[str, Any]) -> bool:
    text = json.dumps(body.get("messages", []), sort_keys=True)
    return hashlib.sha256(text.encode()).digest()[0] % 5 == 0


def _fault_run(root: Path, role: str | None, fault: Any, persistent: bool) -> tuple[Any, dict[str, int]]:
    with ScriptedServer(last_demo_answer) as s, ScriptedServer(lambda r: TEACHER) as t:
        target = {"student": s, "teacher": t}.get(role or "")
        if target is not None:
            (target.fail_when(_a_fifth, fault) if persistent else target.fail_next(fault))
        extra = ["student.timeout=1", "teacher.timeout=1", "student.retries=1", "teacher.retries=1"]
        cfg = load_config(None, _overrides(root, s.api_base, t.api_base, *extra))
        result = tutelage.run(cfg, embedder=HashEmbedder())
        return result, {"student": len(s.chat_requests()), "teacher": len(t.chat_requests())}


def faults(work: Path) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    notes: list[str] = []
    clean, _ = _fault_run(work / "clean", None, None, False)
    cured = {500, 429, 503, "disconnect", "hang", "not_json"}
    for role in ("student", "teacher"):
        for fault in [500, 429, 503, *FAULTS]:
            for persistent in (False, True):
                name = f"{role} {fault} {'persistent' if persistent else 'transient'}"
                counts["tried"] += 1
                try:
                    result, seen = _fault_run(work / name.replace(" ", "-"), role, fault, persistent)
                    calls = Ledger(result.run_dir / "ledger.jsonl").calls
                    ok = result.test_after is not None
                    ok = ok and all(sum(1 for c in calls if c.role == r) == seen[r] for r in seen)
                    if fault == "huge":
                        ok = (
                            ok
                            and max(len(x) for p in result.run_dir.rglob("*.jsonl") for x in p.open())
                            < 100_000
                        )
                    else:
                        ok = ok and any(not c.ok for c in calls if c.role == role)
                    if fault in cured and not persistent:
                        ok = ok and result.metrics["test_accuracy"] == clean.metrics["test_accuracy"]
                    why = "" if ok else "finished, but the ledger or the scores disagree"
                except tutelage.TutelageError as exc:  # one clear line is handling only for a dead endpoint
                    ok, why = False, f"stopped: {exc}"
                except Exception as exc:  # noqa: BLE001 - a crash is what this bench counts
                    ok, why = False, f"crashed: {exc.__class__.__name__}: {exc}"
                counts["handled" if ok else "failed"] += 1
                if not ok:
                    notes.append(f"fault {name}: {why}")
    return counts, notes


# -- fuzz -----------------------------------------------------------------------------------------

HOSTILE = [
    "", "-1", "0", "1e309", ".inf", "-.inf", ".nan", "[1, 2", "{a: 1}", "null", "~", "true", "[]", "{}",
    "../../etc", "/abs/path", "\\0", "'\\x00'", "ü" * 600, "9" * 40, "- - -", "*anchor", "&a [*a]",
    "!!python/object:os.system",
    "'\"", "0x1F", "1_000", "2026-12-01", "[[[[[[]]]]]]", "%s%s%s", "{{ x }}",
    "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"),
]  # fmt: skip
SKIP_KEYS = ("provider", "api_base", "api_key_env", "runs_dir", "url", "mlflow", "embedder")


def _keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out += _keys(value, full + ".")
        elif not any(s in full for s in SKIP_KEYS):
            out.append(full)
    return out


def _garbage(rng: random.Random, n: int) -> str:
    pool = string.printable + "\x00\x1b\u2028\ufeffé中"
    return "".join(rng.choice(pool) for _ in range(n))


def fuzz(n: int, rng: random.Random, work: Path) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    notes: list[str] = []
    runner = CliRunner()
    keys = _keys(load_config(None).model_dump(mode="json"))
    fixed = _overrides(work / "fuzz", DEAD, DEAD)  # a valid config ends at the dead endpoint, fast
    outcomes: Counter[str] = Counter()
    for i in range(n):
        kind = ["set", "config", "suite", "import"][i % 4]
        case = work / f"fuzz-{i}"
        case.mkdir(parents=True, exist_ok=True)
        if kind == "set":
            extra = [f"{rng.choice(keys)}={rng.choice(HOSTILE)}" for _ in range(rng.randint(1, 3))]
            args = ["run", *sum((["--set", x] for x in fixed), [])]
            args += sum((["--set", x] for x in extra), [])  # last: the hostile values win
            what = " ".join(extra)
        elif kind == "config":
            body = rng.choice([
                _garbage(rng, rng.randint(1, 300)),
                yaml.safe_dump({rng.choice(keys): rng.choice(HOSTILE)}),
                "name: x\n" * rng.randint(1, 3) + _garbage(rng, 20),
            ])  # fmt: skip
            path = case / "c.yaml"
            path.write_bytes(
                body.encode("utf-8", "surrogateescape") if rng.random() < 0.8 else os.urandom(64)
            )
            args, what = ["run", str(path), *sum((["--set", x] for x in fixed), [])], f"config file {path}"
        elif kind == "suite":
            suffix = rng.choice([".jsonl", ".csv"])
            path = case / f"s{suffix}"
            rows = [
                rng.choice(
                    [
                        json.dumps({"input": _garbage(rng, 30), "answer": _garbage(rng, 5)}),
                        json.dumps({"input": None, "answer": 3}),
                        json.dumps([1, 2, 3]),
                        "input,answer",
                        _garbage(rng, 50),
                        '{"input": "a", "answer": "b", "split": "' + _garbage(rng, 4) + '"}',
                    ]
                )  # fmt: skip
                for _ in range(rng.randint(0, 12))
            ]
            path.write_bytes(("\n".join(rows)).encode("utf-8", "surrogateescape"))
            args = ["eval", *sum((["--set", x] for x in fixed), [])]
            args += ["--set", "suite.name=file", "--set", f"suite.path={path}", "--out", str(case / "eval")]
            what = f"suite file {path}"
        else:
            path = case / "lessons.jsonl"
            rows = [
                rng.choice(
                    [
                        json.dumps(
                            {"kind": rng.choice(["example", "strategy", "x"]), "text": _garbage(rng, 20)}
                        ),
                        json.dumps({"id": 1}),
                        _garbage(rng, 40),
                        "",
                    ]
                )  # fmt: skip
                for _ in range(rng.randint(0, 6))
            ]
            path.write_bytes(("\n".join(rows)).encode("utf-8", "surrogateescape"))
            args, what = ["memory", "import", str(case / "store"), str(path)], f"import file {path}"
        counts["tried"] += 1
        result = runner.invoke(app, args)
        text = result.output
        crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
        ok = not crashed and result.exit_code in (0, 1, 2) and "Traceback" not in text
        counts["handled" if ok else "failed"] += 1
        outcomes[kind] += 1 if result.exit_code == 0 else 0
        if os.environ.get("CHAOS_VERBOSE"):
            print(f"{kind} {what[:60]!r} -> {result.exit_code}: {text.strip().splitlines()[-1:]}")
        if not ok:
            exc = result.exception
            notes.append(f"fuzz {i} ({kind}: {what[:80]!r}): exit {result.exit_code}, {exc!r:.160}")
    notes.append(f"fuzz: exit 0 (accepted) per kind {dict(outcomes)}; the rest ended with one line")
    return counts, notes


# -- sandbox --------------------------------------------------------------------------------------

UNGUARD = "import __main__\n__main__._refused.clear()\n__main__._changes.clear()\n"
UNGUARD += "__main__._readable = ('',)\n__main__._writable = ('',)\n"


def sandbox(work: Path) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    notes: list[str] = []
    os.environ["TUTELAGE_CHAOS_SECRET"] = "sk-chaos-secret"
    marker = f"{time.time_ns() % 10**6}.25"
    secret_file = work / "secret.txt"
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    secret_file.write_text("sk-file-secret")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        attacks = {
            "network after switching the guard off": (
                UNGUARD + f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)\nprint('in')",
                lambda r: "in" not in r.output,
            ),
            "the parent's environment through /proc": (
                UNGUARD + "import os\nout=b''\nfor p in os.listdir('/proc'):\n"
                "    try: out += open(f'/proc/{p}/environ','rb').read()\n    except OSError: pass\n"
                "print(b'sk-chaos-secret' in out)",
                lambda r: r.output == "False",
            ),
            "a file outside the working directory": (
                UNGUARD + f"print(open({str(secret_file)!r}).read())",
                lambda r: "sk-file-secret" not in r.output,
            ),
            "writing into the Python installation": (
                UNGUARD
                + "import os\nopen(os.path.realpath(os.sys.prefix) + '/owned', 'w').write('x')\n"
                + "print('wrote')",
                lambda r: "wrote" not in r.output and not (Path(sys.prefix).resolve() / "owned").exists(),
            ),
            "a process that outlives the snippet": (
                UNGUARD
                + "import subprocess\n"
                + f"subprocess.Popen(['/usr/bin/sleep', '{marker}'], start_new_session=True)",
                lambda r: _gone(marker),
            ),
            "a fork bomb": (
                UNGUARD + "import os, time\nn=0\ntry:\n    for _ in range(1000):\n"
                "        if os.fork() == 0:\n            time.sleep(3); os._exit(0)\n        n += 1\n"
                "except OSError: pass\nprint(n)",
                lambda r: r.output.isdigit() and int(r.output) < MAX_PROCESSES,
            ),
        }
        for name, (code, contained) in attacks.items():
            counts["tried"] += 1
            result = run_python(code, timeout=10)
            ok = bool(contained(result))
            counts["handled" if ok else "failed"] += 1
            if not ok:
                notes.append(f"sandbox attack '{name}' got through: {result}")
    return counts, notes


def _gone(marker: str) -> bool:
    time.sleep(0.5)
    left = subprocess.run(["pgrep", "-f", f"sleep {marker}"], capture_output=True, text=True).stdout
    subprocess.run(["pkill", "-f", f"sleep {marker}"], check=False)
    return left == ""


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=50)
    parser.add_argument("--fuzz", type=int, default=100)
    parser.add_argument("--classes", default="kills,faults,fuzz,sandbox")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = args.dir or Path(tempfile.mkdtemp(prefix="tutelage-chaos-"))
    rows: list[tuple[str, Counter[str], float]] = []
    notes: list[str] = []
    for name in args.classes.split(","):
        began = time.monotonic()
        if name == "kills":
            counts, more = kills(args.kills, rng, work / "kills")
        elif name == "faults":
            counts, more = faults(work / "faults")
        elif name == "fuzz":
            counts, more = fuzz(args.fuzz, rng, work / "fuzz")
        elif name == "sandbox":
            counts, more = sandbox(work / "sandbox")
        else:
            parser.error(f"unknown class {name!r}")
        rows.append((name, counts, time.monotonic() - began))
        notes += more
        print(f"{name}: {dict(counts)} in {time.monotonic() - began:.0f} s", flush=True)
    print("\n| class | tried | handled | failed | seconds |\n|---|---|---|---|---|")
    for name, counts, seconds in rows:
        print(f"| {name} | {counts['tried']} | {counts['handled']} | {counts['failed']} | {seconds:.0f} |")
    total = Counter[str]()
    for _, counts, _ in rows:
        total.update(counts)
    print(f"| all | {total['tried']} | {total['handled']} | {total['failed']} | |")
    for note in notes:
        print(f"- {note}")
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if total["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
