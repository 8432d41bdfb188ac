"""BIG-Bench Hard (MIT, Suzgun et al. 2022): 27 reasoning tasks with their published 3-shot prompts.

Reads ``bbh/bbh/<task>.json`` (``{"canary", "examples": [{"input", "target"}]}``) and
``bbh/cot-prompts/<task>.txt`` (canary line, ``-----``, the task description, 3 exemplars) under
``suite.data_dir``. ``style: cot`` shows the published chain-of-thought prompt as ``Task.prefix`` and
``Q: {input}\\nA: Let's think step by step.`` as the input, so ``Task.prompt`` is byte for byte the
``input`` behind the published code-davinci-002 scores; ``style: direct`` shows the same exemplars
with the reasoning removed (``Q: ...\\nA: X``) and ``Q: {input}\\nA:``.

BBH has no train split. Per task, the items are shuffled with the seed and the first
``POOL_PER_TASK`` form the train pool; the rest are held out as test. ``dev_size`` is spread evenly
over the selected tasks (the first tasks in name order take one more when it does not divide) and
carved from each pool; the rest of the pools is train. ``train_size`` and ``test_size`` cap train and
test round-robin over the tasks, so every task keeps its share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tutelage.config import SuiteConfig
from tutelage.errors import ConfigError, DataError
from tutelage.evals.suites._base import Suite, Task
from tutelage.evals.suites._common import data_folder, grader_for, read_json
from tutelage.evals.suites._split import balanced, carve

__all__ = ["POOL_PER_TASK", "TASKS", "load", "read_prompt"]

POOL_PER_TASK = 50
COT_CUE = "A: Let's think step by step."

TASKS = (
    "boolean_expressions", "causal_judgement", "date_understanding", "disambiguation_qa",
    "dyck_languages", "formal_fallacies", "geometric_shapes", "hyperbaton",
    "logical_deduction_five_objects", "logical_deduction_seven_objects",
    "logical_deduction_three_objects", "movie_recommendation", "multistep_arithmetic_two", "navigate",
    "object_counting", "penguins_in_a_table", "reasoning_about_colored_objects", "ruin_names",
    "salient_translation_error_detection", "snarks", "sports_understanding", "temporal_sequences",
    "tracking_shuffled_objects_five_objects", "tracking_shuffled_objects_seven_objects",
    "tracking_shuffled_objects_three_objects", "web_of_lies", "word_sorting",
)  # fmt: skip

INSTRUCTIONS = {
    "cot": "Answer the last question the way the examples do: think step by step, then end with "
    "'So the answer is <answer>.'",
    "direct": "Answer the last question the way the examples do: reply with the answer only.",
}

DEMO = (
    "Task: Q: Today is 03/01/2021. What was the date yesterday in MM/DD/YYYY?\nA: Let's think step by step.\n"
    "Student answer: The day before March 1 is February 29, 2021. So the answer is 02/29/2021.\n"
    "Correct answer: 02/28/2021",
    "DIAGNOSIS: The student assumed February has 29 days, but 2021 is not a leap year.\n"
    "STRATEGY: When a date calculation crosses the end of February, first decide whether the year is a "
    "leap year (divisible by 4, and centuries only if divisible by 400).\n"
    "REASONING: 2021 is not divisible by 4, so February 2021 has 28 days. The day before 03/01/2021 is "
    "02/28/2021. So the answer is 02/28/2021.",
)


@dataclass(frozen=True)
class Prompt:
    """One task's published prompt: its header and exemplars (question, reasoning after the cue, answer).

    The reasoning keeps its leading newline (or space, in sports_understanding), so ``cot()`` rebuilds
    the published text exactly.
    """

    header: str
    exemplars: tuple[tuple[str, str, str], ...]

    def cot(self) -> str:
        return "\n\n".join([self.header, *(f"Q: {q}\n{COT_CUE}{r}" for q, r, _ in self.exemplars)])

    def direct(self) -> str:
        return "\n\n".join([self.header, *(f"Q: {q}\nA: {a}" for q, _, a in self.exemplars)])


def read_prompt(path: Path) -> Prompt:
    """Parse ``cot-prompts/<task>.txt`` (the canary line and ``-----`` are dropped)."""
    try:
        _canary, sep, body = path.read_text(encoding="utf-8").split("\n", 2)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the BBH prompt {path}: {exc}") from None
    parts = body.strip().split("\n\nQ: ")
    if sep != "-----" or len(parts) < 2:
        raise DataError(f"{path}: expected a canary line, '-----', a description and 'Q:' exemplars")
    shots = []
    for part in parts[1:]:
        question, cue, reasoning = part.partition(f"\n{COT_CUE}")
        if not cue or "So the answer is " not in reasoning or not reasoning.endswith("."):
            raise DataError(f"{path}: an exemplar lacks '{COT_CUE}' or 'So the answer is X.'")
        shots.append((question, reasoning, reasoning.rsplit("So the answer is ", 1)[1][:-1]))
    return Prompt(parts[0], tuple(shots))


def _kind(targets: list[str]) -> str:
    letters = sum(len(t) == 3 and t[0] == "(" and t[2] == ")" for t in targets)
    if letters * 2 > len(targets):
        return "multiple_choice"
    return "binary" if len(set(targets)) <= 2 else "free_form"


def _read_task(base: Path, task: str, style: str) -> list[Task]:
    path = base / "bbh" / f"{task}.json"
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
        raise DataError(f"{path}: expected {{'canary': ..., 'examples': [...]}}")
    prompt = read_prompt(base / "cot-prompts" / f"{task}.txt")
    prefix = prompt.cot() if style == "cot" else prompt.direct()
    cue = COT_CUE if style == "cot" else "A:"
    rows = data["examples"]
    kind = _kind([str(r.get("target", "")) for r in rows if isinstance(r, dict)])
    tasks = []
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("input") or "target" not in row:
            raise DataError(f"{path}: example {n} lacks 'input' or 'target'")
        tags = {"task": task, "kind": kind}
        tasks.append(Task(f"{task}-{n}", f"Q: {row['input']}\n{cue}", str(row["target"]), tags, prefix))
    return tasks


def _selected(cfg: SuiteConfig) -> list[str]:
    if cfg.tasks is None:
        return list(TASKS)
    unknown = [t for t in cfg.tasks if t not in TASKS]
    if unknown:
        raise ConfigError(f"suite.tasks: unknown BBH task(s) {', '.join(unknown)}; valid: {', '.join(TASKS)}")
    return sorted(set(cfg.tasks))


def load(cfg: SuiteConfig) -> Suite:
    """BBH at the configured ``style`` over ``tasks``: ids are ``<task>-<index in the task file>``."""
    base = data_folder(cfg, "bbh", "cot-prompts", "bbh/bbh/<task>.json and bbh/cot-prompts/<task>.txt")
    names = _selected(cfg)
    share, extra = divmod(cfg.dev_size, len(names))
    trains, devs, tests = [], [], []
    for i, name in enumerate(names):
        pool, test = carve(_read_task(base, name, cfg.style), f"bbh:{cfg.seed}:{name}", POOL_PER_TASK)
        n_dev = share + (i < extra)
        if n_dev >= len(pool):
            raise ConfigError(
                f"suite.dev_size {cfg.dev_size} over {len(names)} BBH task(s) takes {n_dev} of {name}'s "
                f"{len(pool)}-item train pool; lower dev_size or select more tasks"
            )
        devs.append(pool[:n_dev])
        trains.append(pool[n_dev:])
        tests.append(test)
    return Suite(
        "bbh",
        cfg.instruction or INSTRUCTIONS[cfg.style],
        balanced(trains, cfg.train_size),
        [t for dev in devs for t in dev],
        balanced(tests, cfg.test_size),
        grader_for(cfg, "bbh", style=cfg.style),
        [],
        DEMO,
        held_out=[t for test in tests for t in test],
        slice_keys=("task", "kind"),
        reasoning=cfg.style == "cot",
    )
