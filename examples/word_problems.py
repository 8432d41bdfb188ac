"""A small arithmetic word-problem set, generated from templates with a fixed seed (no download).

Each item is one or two operations on small whole numbers, with a whole-number answer; ``splits()``
gives disjoint train, dev and test lists of ``{"id", "input", "answer"}``.
"""

from __future__ import annotations

import random
from collections.abc import Callable

# (template, answer from the numbers a, b, c)
TEMPLATES: list[tuple[str, Callable[[int, int, int], int]]] = [
    ("Mia has {a} apples and buys {b} more. How many apples does she have?", lambda a, b, c: a + b),
    ("A shelf holds {a} books. {b} are taken away. How many books are left?", lambda a, b, c: a - b),
    ("There are {a} boxes with {b} pens in each. How many pens are there?", lambda a, b, c: a * b),
    ("Tom shares {p} sweets equally among {b} friends. How many does each friend get?", lambda a, b, c: a),
    (
        "A bus has {a} people. {b} get off and {c} get on. How many people are on the bus?",
        lambda a, b, c: a - b + c,
    ),
    (
        "Sara reads {a} pages a day for {b} days, then {c} more pages. How many pages did she read?",
        lambda a, b, c: a * b + c,
    ),
    (
        "A farmer has {a} cows and {b} times as many sheep. How many animals does he have?",
        lambda a, b, c: a + a * b,
    ),
    (
        "Ben had {a} coins, spent {b}, then found {c}. How many coins does he have now?",
        lambda a, b, c: a - b + c,
    ),
]


def problems(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    out, seen = [], set()
    while len(out) < n:
        template, answer = rng.choice(TEMPLATES)
        b, c = rng.randint(2, 9), rng.randint(2, 19)
        a = rng.randint(b + 1, 40)
        text = template.format(a=a, b=b, c=c, p=a * b)
        if text in seen:
            continue
        seen.add(text)
        out.append({"id": f"wp-{len(out)}", "input": text, "answer": str(answer(a, b, c))})
    return out


def splits(train: int = 40, dev: int = 20, test: int = 20) -> tuple[list[dict[str, str]], ...]:
    """Disjoint train, dev and test items."""
    items = problems(train + dev + test)
    return items[:train], items[train : train + dev], items[train + dev :]
