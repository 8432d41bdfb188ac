"""NLU++ (CC BY 4.0, Casanueva et al. 2022): multi-label intent detection, banking or hotels domain.

``suite.domain`` (``banking`` unless set; or ``hotels``) picks ``nlupp/<domain>/fold0.json`` ..
``fold19.json`` (lists of ``{"text", "intents", "slots"}``; an item without ``intents`` has none),
read with ``nlupp/ontology.json`` under ``suite.data_dir``. The label set is every ontology intent
whose domain includes the chosen one or ``general`` (48 for banking, 40 for hotels). The gold answer
is the sorted intents joined by ``", "`` (``none`` for an empty set), graded by intent F1. The suite
is named ``nlupp`` (banking) or ``nlupp-hotels``, so lessons and eval folders of the two stay apart.
The hotels folds are in the authors' repository (PolyAI-LDN/task-specific-datasets, ``nlupp/data``).

Splits: folds 0-9 are the train pool (dev carved from it with the seed), folds 10-19 are test
(shuffled with seed + 1); pool texts that also occur in test never become train or dev items.
``Suite.labels`` stays empty: snapping a reply to one label would destroy a multi-label answer; the
label set travels with the ``f1`` grader and, with ``show_labels``, in the instruction.
"""

from __future__ import annotations

from pathlib import Path

from tutelage.config import SuiteConfig
from tutelage.errors import DataError
from tutelage.evals.suites._base import Suite, Task
from tutelage.evals.suites._common import data_folder, grader_for, read_json
from tutelage.evals.suites._split import drop_leaks, split_pools

__all__ = ["NONE", "TEST_FOLDS", "TRAIN_FOLDS", "load"]

TRAIN_FOLDS = range(0, 10)
TEST_FOLDS = range(10, 20)
NONE = "none"

DEMOS = {
    "banking": (
        "Task: I still haven't got the new card you sent last week\nStudent answer: card\n"
        "Correct answer: arrival, card, new",
        "DIAGNOSIS: The student named the object but missed that the message is about a new card that has "
        "not arrived.\n"
        "STRATEGY: List every intent the message supports: the object (card, transfer_payment_deposit, ...), "
        "what is asked or wrong (arrival, how_long, ...), qualifiers (new, international) and general acts "
        "(affirm, thank); reply with all of them.",
    ),
    "hotels": (
        "Task: can we still get a table at your restaurant tonight?\nStudent answer: restaurant\n"
        "Correct answer: booking, make_open_apply_setup_get_activate, restaurant",
        "DIAGNOSIS: The student named the place but missed that the guest wants to make a new booking.\n"
        "STRATEGY: List every intent the message supports: the object (booking, restaurant, spa, "
        "room_service, ...), what is asked or wanted (request_info, how_much, when, change, ...), "
        "qualifiers (new, existing, more_higher_after) and general acts (greet, thank); reply with all of "
        "them.",
    ),
}
SPEAKERS = {"banking": "banking customer", "hotels": "hotel guest"}


def _labels(path: Path, domain: str) -> list[str]:
    data = read_json(path)
    intents = data.get("intents") if isinstance(data, dict) else None
    if not isinstance(intents, dict):
        raise DataError(f"{path}: expected an 'intents' mapping")
    keep = {domain, "general"}
    return sorted(name for name, spec in intents.items() if keep & set(spec.get("domain", [])))


def _read_fold(base: Path, domain: str, fold: int, labels: set[str]) -> list[Task]:
    path = base / domain / f"fold{fold}.json"
    rows = read_json(path)
    if not isinstance(rows, list):
        raise DataError(f"{path}: expected a JSON list of items")
    tasks = []
    for n, row in enumerate(rows):
        text = str(row.get("text") or "").strip() if isinstance(row, dict) else ""
        if not text:
            raise DataError(f"{path}: item {n} has no 'text'")
        intents = sorted(set(row.get("intents") or []))
        unknown = [i for i in intents if i not in labels]
        if unknown:
            raise DataError(f"{path}: item {n} has intents outside the ontology: {', '.join(unknown)}")
        answer = ", ".join(intents) or NONE
        tasks.append(Task(f"fold{fold}-{n}", text, answer, tags={"n_intents": str(len(intents))}))
    return tasks


def load(cfg: SuiteConfig) -> Suite:
    """NLU++ in ``suite.domain``: ids ``fold<k>-<i>``; about 1,000 items per side before capping."""
    domain = cfg.domain or "banking"
    contents = f"nlupp/{domain}/fold0..19.json and nlupp/ontology.json"
    base = data_folder(cfg, "nlupp", f"{domain}/fold0.json", contents)
    labels = _labels(base / "ontology.json", domain)
    test_all = [t for k in TEST_FOLDS for t in _read_fold(base, domain, k, set(labels))]
    pool = drop_leaks([t for k in TRAIN_FOLDS for t in _read_fold(base, domain, k, set(labels))], test_all)
    train, dev, test = split_pools(pool, test_all, cfg)
    instruction = f"List every intent the {SPEAKERS[domain]} message expresses."
    if cfg.show_labels:
        instruction += " Choose from: " + ", ".join(labels) + "."
    instruction += f" Reply with the intents separated by commas, or '{NONE}' if none applies."
    return Suite(
        "nlupp" if domain == "banking" else f"nlupp-{domain}",
        cfg.instruction or instruction,
        train,
        dev,
        test,
        grader_for(cfg, "f1", labels=labels),
        [],
        DEMOS[domain],
        held_out=test_all,
        slice_keys=("n_intents",),
    )
