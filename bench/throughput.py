"""Throughput: a raw async client, `tutelage eval`'s harness and one loop round on one scripted endpoint.

A scripted OpenAI-compatible endpoint (``tutelage.testing.ScriptedServer``, in a process of its own so
its CPU is not counted) answers every request after a fixed latency. At each latency and concurrency
the same Banking77 requests are sent by:

- raw: an async httpx client, ``concurrency`` requests in flight (the endpoint's own ceiling);
- eval: ``tutelage.evals.runner.evaluate`` (what ``tutelage eval banking77 --baseline zero-shot``
  runs) with ``student.concurrency`` set, timed over its harness phase;
- loop: one round of the loop (teacher off, optimizer none, no monitor), timed over its attempt and
  dev phases (half the items each; the dev items see the round's gold examples).

Each row is measured in one run, one after another, so the ratios eval/raw and loop/raw are paired
on a shared, noisy machine. CPU ms/item is this process's CPU time (all threads) over the timed
phases, per item.

    .venv/bin/python bench/throughput.py              # 1,000 items; 0, 20, 100 ms; concurrency 1, 8, 32, 64
    .venv/bin/python bench/throughput.py --quick      # 200 items; 20, 100 ms; concurrency 8, 32
    .venv/bin/python bench/throughput.py --latencies 20 --concurrencies 32 --only raw,eval

The full table takes about 20 minutes on 2 cores (concurrency 1 at 100 ms is most of it). To see
what bounds a client, sample it with py-spy (``pip install py-spy``; ``--gil`` keeps the samples of
the thread holding the GIL, i.e. the CPU the harness threads queue for):

    py-spy record --gil -r 200 -f raw -o /tmp/eval.txt -- \
        .venv/bin/python bench/throughput.py --latencies 20 --concurrencies 32 --only eval
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import httpx  # noqa: E402

from tutelage.config import RunConfig, load_config  # noqa: E402
from tutelage.evals.baselines import build_baseline  # noqa: E402
from tutelage.evals.runner import eval_overrides, evaluate  # noqa: E402
from tutelage.evals.suites import load_suite  # noqa: E402
from tutelage.loop.runner import start_run  # noqa: E402
from tutelage.testing import HashEmbedder, ScriptedServer  # noqa: E402

REPLY = "card_arrival"
CLIENTS = ("raw", "eval", "loop")
LOOP_PHASES = ("student attempts", "dev evaluation")


@dataclass
class Phase:
    label: str
    items: int
    began: float
    cpu: float
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass
class PhaseTimer:
    """A loop/eval Reporter that times each phase from its start to its last finished item."""

    phases: list[Phase] = field(default_factory=list)

    def phase(self, label: str, total: int) -> None:
        self.phases.append(Phase(label, total, time.perf_counter(), time.process_time()))

    def update(self, done: int, total: int, *args: Any, **kwargs: Any) -> None:
        if self.phases and done == total:
            p = self.phases[-1]
            p.seconds, p.cpu_seconds = time.perf_counter() - p.began, time.process_time() - p.cpu

    def round_done(self, row: dict[str, Any]) -> None:
        return None

    def message(self, text: str) -> None:
        return None

    def rate(self, *labels: str) -> tuple[float, float]:
        """Items per second and CPU ms per item over the phases whose label ends with one of ``labels``."""
        chosen = [p for p in self.phases if p.label.endswith(labels)]
        items = sum(p.items for p in chosen)
        seconds = sum(p.seconds for p in chosen)
        if not items or not seconds:
            raise RuntimeError(f"no timed phase among {[p.label for p in self.phases]}")
        return items / seconds, 1000 * sum(p.cpu_seconds for p in chosen) / items


@dataclass
class Row:
    latency_ms: float
    concurrency: int
    items: int
    rate: dict[str, float] = field(default_factory=dict)  # client -> items per second
    cpu: dict[str, float] = field(default_factory=dict)  # client -> CPU ms per item


def serve(latency: float) -> None:
    """The endpoint process: print the API base, answer until stdin closes."""
    with ScriptedServer(lambda request: REPLY, delay=latency, model="student") as server:
        print(server.api_base, flush=True)
        sys.stdin.read()


@contextlib.contextmanager
def endpoint(latency_ms: float) -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(latency_ms / 1000)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.stdin is None or proc.stdout is None:
        raise RuntimeError("the scripted endpoint has no pipes")
    try:
        base = proc.stdout.readline().strip()
        if not base:
            raise RuntimeError("the scripted endpoint did not start")
        yield base
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request_bodies(cfg: RunConfig, items: int) -> list[dict[str, Any]]:
    """The chat requests the zero-shot student sends for the first ``items`` test items."""
    suite = load_suite(cfg.suite)
    program = build_baseline("zero-shot", suite, snap_to_labels=True)
    student = cfg.student
    return [
        {
            "model": student.model,
            "messages": program.request(task.input),
            "temperature": student.temperature,
            "max_tokens": student.max_tokens,
        }
        for task in suite.test[:items]
    ]


async def _raw(base: str, bodies: list[dict[str, Any]], concurrency: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        todo = iter(bodies)

        async def worker() -> None:
            for body in todo:  # one event loop: the shared iterator hands each body out once
                response = await client.post("/chat/completions", json=body)
                response.raise_for_status()
                response.json()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(bodies) / (time.perf_counter() - began)


def raw_rate(base: str, bodies: list[dict[str, Any]], concurrency: int) -> tuple[float, float]:
    cpu = time.process_time()
    rate = asyncio.run(_raw(base, bodies, concurrency))
    return rate, 1000 * (time.process_time() - cpu) / len(bodies)


def _student(base: str, concurrency: int, root: Path) -> list[str]:
    return [
        f"runs_dir={root}",
        "student.provider=openai",
        f"student.api_base={base}",
        "student.model=student",
        f"student.concurrency={concurrency}",
    ]


def eval_rate(base: str, concurrency: int, items: int, root: Path) -> tuple[float, float]:
    cfg = load_config(
        None,
        eval_overrides("banking77", None, [*_student(base, concurrency, root), f"suite.test_size={items}"]),
    )
    timer = PhaseTimer()
    summary = evaluate(cfg, baseline="zero-shot", limit=items, out=root / "eval", fresh=True, reporter=timer)
    if summary.failures:
        raise RuntimeError(f"eval: {summary.failures} of {summary.n} items failed")
    return timer.rate("banking77 test")


def loop_rate(base: str, concurrency: int, items: int, root: Path) -> tuple[float, float]:
    batch = items // 2
    search = 2
    cfg = load_config(
        None,
        [
            *_student(base, concurrency, root),
            "name=throughput",
            "teacher=off",
            "loop.rounds=1",
            "loop.optimizer=none",
            f"loop.batch_size={batch}",
            f"loop.search_size={search}",
            f"suite.train_size={batch + search}",
            f"suite.dev_size={items - batch}",
            "suite.test_size=1",
            "guards.monitor_size=0",
            "memory.verify=off",
        ],
    )
    timer = PhaseTimer()
    start_run(cfg, reporter=timer, embedder=HashEmbedder())
    return timer.rate(*(f"round 1: {p}" for p in LOOP_PHASES))


def measure(latency_ms: float, concurrency: int, items: int, clients: Sequence[str], base: str) -> Row:
    row = Row(latency_ms, concurrency, items)
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        root = Path(tmp)
        for client in clients:
            if client == "raw":
                cfg = load_config(None, eval_overrides("banking77", None, [f"suite.test_size={items}"]))
                rate, cpu = raw_rate(base, request_bodies(cfg, items), concurrency)
            elif client == "eval":
                rate, cpu = eval_rate(base, concurrency, items, root / "e")
            else:
                rate, cpu = loop_rate(base, concurrency, items, root / "l")
            row.rate[client], row.cpu[client] = rate, cpu
            print(
                f"  {latency_ms:g} ms, concurrency {concurrency}, {client}: {rate:.0f} items/s, "
                f"{cpu:.2f} CPU ms/item",
                file=sys.stderr,
                flush=True,
            )
    return row


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(rows: list[Row]) -> None:
    print(
        "\n| latency ms | concurrency | items | raw items/s | eval items/s | loop items/s | eval/raw "
        "| loop/raw | eval CPU ms/item | loop CPU ms/item |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        raw = r.rate.get("raw")
        ratio = {c: r.rate[c] / raw if raw and c in r.rate else None for c in ("eval", "loop")}
        print(
            f"| {r.latency_ms:g} | {r.concurrency} | {r.items} | {_cell(raw, '.0f')} "
            f"| {_cell(r.rate.get('eval'), '.0f')} | {_cell(r.rate.get('loop'), '.0f')} "
            f"| {_cell(ratio['eval'], '.2f')} | {_cell(ratio['loop'], '.2f')} "
            f"| {_cell(r.cpu.get('eval'), '.2f')} | {_cell(r.cpu.get('loop'), '.2f')} |"
        )


def _numbers(text: str, kind: type[float] | type[int]) -> list[Any]:
    return [kind(x) for x in text.split(",") if x.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=None, help="items per client and row (default 1000)")
    parser.add_argument("--latencies", default=None, help="endpoint latencies in ms (default 0,20,100)")
    parser.add_argument("--concurrencies", default=None, help="requests in flight (default 1,8,32,64)")
    parser.add_argument("--only", default=",".join(CLIENTS), help="clients to run: raw,eval,loop")
    parser.add_argument("--quick", action="store_true", help="200 items; 20, 100 ms; concurrency 8, 32")
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        serve(args.serve)
        return 0
    items = args.items or (200 if args.quick else 1000)
    latencies = _numbers(args.latencies or ("20,100" if args.quick else "0,20,100"), float)
    concurrencies = _numbers(args.concurrencies or ("8,32" if args.quick else "1,8,32,64"), int)
    clients = [c for c in CLIENTS if c in args.only.split(",")]
    if items < 2 or not clients or min(concurrencies, default=0) < 1:
        parser.error("--items must be at least 2, --only must name a client, concurrencies at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    for name in ("dspy", "LiteLLM", "litellm", "httpx", "chromadb", "tutelage"):
        logging.getLogger(name).setLevel(logging.ERROR)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"machine: {usable}/{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, python "
        f"{platform.python_version()}, dspy {version('dspy')}, litellm {version('litellm')}, "
        f"httpx {version('httpx')}; {items} items per client and row"
    )
    rows = []
    for latency in latencies:
        with endpoint(latency) as base:
            if not rows:  # the first LM call imports LiteLLM and its providers (seconds): not timed
                with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
                    eval_rate(base, 2, 4, Path(tmp))
            for concurrency in concurrencies:
                rows.append(measure(latency, concurrency, items, clients, base))
    report(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
