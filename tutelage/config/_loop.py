"""The loop's settings: rounds, budgets, acceptance, guards, the agent and the optimizers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tutelage.config._base import _Frozen


class BudgetConfig(_Frozen):
    """Spending limits; the first one reached ends the run cleanly (the final test still runs).

    Tokens and money count every call of the loop, per role; held-out test evaluations are recorded
    in the ledger but never refused. ``seconds`` is the loop's wall time, summed across resumes.
    """

    student_tokens: int | None = Field(None, ge=1)
    teacher_tokens: int | None = Field(None, ge=1)
    student_usd: float | None = Field(None, gt=0.0)
    teacher_usd: float | None = Field(None, gt=0.0)
    seconds: float | None = Field(None, gt=0.0)


class AcceptConfig(_Frozen):
    """When a round's program replaces the incumbent: paired on the same dev items.

    Accepted when the dev gain exceeds ``min_gain`` and a one-sided exact sign test on the items the
    two programs disagree on gives p < ``alpha`` (``alpha: 1.0`` accepts any gain above ``min_gain``).
    """

    alpha: float = Field(0.2, gt=0.0, le=1.0)
    min_gain: float = Field(0.0, ge=0.0, lt=1.0)


class GuardConfig(_Frozen):
    """Guards against teacher hacking (the student fitting the teacher instead of the task).

    ``teacher_samples`` completions per failure (at ``teacher.temperature``, or 0.7 if that is 0),
    keeping only strategies whose word overlap with an already kept one is below ``diversity``.
    ``monitor_size`` of the round's diagnosed failures are re-attempted with the compiled program:
    when that score rises by ``monitor_margin`` while dev does not rise, the round is flagged.
    """

    teacher_samples: int = Field(1, ge=1, le=8)
    diversity: float = Field(0.7, gt=0.0, le=1.0)
    monitor_size: int = Field(20, ge=0, le=1000)
    monitor_margin: float = Field(0.1, ge=0.0, le=1.0)


class AgentConfig(_Frozen):
    """The student's shape: ``plain`` answers in one call; ``react`` may call tools first."""

    kind: Literal["plain", "react"] = "plain"
    tools: tuple[Literal["lessons", "calculator", "python"], ...] = ("lessons", "calculator", "python")
    max_steps: int = Field(6, ge=1, le=50)
    python_timeout: float = Field(5.0, gt=0.0, le=300.0)
    python_memory_mb: int = Field(256, ge=32, le=65536)
    # ``bwrap``: the Python tool's snippets run in a bubblewrap jail (no network, no host files, no
    # host processes); a run refuses to start without bubblewrap. ``none``: limits and an audit hook
    # only, a guard against a model's accidents and not against a hostile one.
    python_sandbox: Literal["bwrap", "none"] = "bwrap"


Optimizer = Literal["fewshot", "mipro", "gepa", "bootstrap", "finetune", "better_together", "none"]
# optimizers that train the student's weights (DSPy's, through the run's trainer and adapter serving)
WEIGHT_OPTIMIZERS = ("finetune", "better_together")
# optimizers that work on any student, since they change only what it retrieves (``student.program``)
OWN_AGENT_OPTIMIZERS = ("fewshot", "none")


class Policy(_Frozen):
    """One retrieval policy the ``fewshot`` search may measure: examples shown, strategies shown, and
    whether the teacher's synthetic and worked examples may be among the examples."""

    k_examples: int = Field(ge=0, le=64)
    k_strategies: int = Field(0, ge=0, le=16)
    teacher_examples: bool = True


class MiproConfig(_Frozen):
    """``loop.optimizer: mipro`` (dspy.MIPROv2; ``loop.trials`` Bayesian trials).

    ``candidates``: instructions searched, the incumbent included (default: two thirds of the trials);
    ``max_demos``: fixed demos bootstrapped from the student's own traces (0: instruction-only);
    ``data_aware``: the teacher summarises the train set first; ``temperature``: the teacher's, for
    proposals.
    """

    candidates: int | None = Field(None, ge=2, le=100)
    max_demos: int = Field(0, ge=0, le=16)
    data_aware: bool = True
    temperature: float = Field(1.0, ge=0.0, le=2.0)


class GepaConfig(_Frozen):
    """``loop.optimizer: gepa`` (dspy.GEPA; ``loop.metric_calls`` budget).

    ``k_rules``: strategies appended to a proposed instruction; ``minibatch``: failures reflected on
    per step; ``max_failures``: failures shown to the teacher per proposal.
    """

    k_rules: int = Field(3, ge=0, le=16)
    minibatch: int = Field(3, ge=1, le=64)
    max_failures: int = Field(5, ge=1, le=64)


class LoopConfig(_Frozen):
    """The round structure of a run: optimizer, batch selection, acceptance, stop rules.

    ``optimizer``: ``fewshot`` searches how many lessons of each kind to show (``search_k`` examples
    x ``search_strategies`` strategies) on a train minibatch; ``mipro`` runs dspy.MIPROv2 with the
    teacher proposing instructions (``trials``); ``gepa`` runs dspy.GEPA with the teacher reflecting
    (``metric_calls``); ``bootstrap`` adds the student's own successful traces as fixed demos;
    ``none`` keeps the program. ``batch``: ``uniform`` fresh items, ``hard`` past failures and items
    like them, ``curriculum`` short (easy) items first. ``patience``: stop after that many rounds in
    a row are rolled back.

    The ``search_size`` items (train items never written to memory) are what an optimizer compiles
    on: ``mipro`` and ``gepa`` take the last ``val_size`` of them (default: half) as the validation
    set that scores candidates and the rest as the trainset they learn from, so the two never overlap.
    """

    @model_validator(mode="after")
    def _val_fits(self) -> LoopConfig:
        if self.val_size is not None and self.val_size >= self.search_size:
            raise ValueError(
                f"loop.val_size ({self.val_size}) must be below loop.search_size ({self.search_size})"
            )
        if any(k < 0 for k in (*self.search_k, *self.search_strategies)):
            raise ValueError("loop.search_k and loop.search_strategies hold lesson counts (0 or more)")
        return self

    def moves(self, round_no: int) -> str:
        """What round ``round_no`` (from 1) moves: ``prompt``, ``weights`` or ``both``."""
        return self.schedule[(round_no - 1) % len(self.schedule)]

    @property
    def validation_size(self) -> int:
        return self.val_size if self.val_size is not None else self.search_size // 2

    rounds: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(100, ge=1)
    optimizer: Optimizer = "fewshot"
    search_k: tuple[int, ...] = (2, 4, 8)
    # Strategies shown: 0 or 1, chosen by measured accuracy (empty: keep memory.k_strategies).
    search_strategies: tuple[int, ...] = (0, 1)
    # An explicit list replaces the search_k x search_strategies grid (see Policy).
    search_policies: tuple[Policy, ...] | None = None
    search_size: int = Field(20, ge=2)
    val_size: int | None = Field(None, ge=1)
    trials: int = Field(6, ge=1, le=200)
    metric_calls: int = Field(60, ge=4, le=100000)
    mipro: MiproConfig = MiproConfig()
    gepa: GepaConfig = GepaConfig()
    batch: Literal["uniform", "hard", "curriculum"] = "uniform"
    # At most this many of a round's failures go to the teacher (in the batch's seeded order); every
    # failure still becomes a gold example. None: all of them.
    diagnose_max: int | None = Field(None, ge=1)
    patience: int | None = Field(None, ge=1)
    # What each round moves, cycling: `prompt` (memory and compiled program), `weights` (a LoRA
    # adapter trained on the kept rounds' fine-tune sets), `both` (prompt, then weights: BetterTogether)
    schedule: tuple[Literal["prompt", "weights", "both"], ...] = Field(("prompt",), min_length=1)
    accept: AcceptConfig = AcceptConfig()
    budget: BudgetConfig = BudgetConfig()

    @field_validator("optimizer", mode="before")
    @classmethod
    def _old_name(cls, value: object) -> object:
        # The v0 name of `fewshot`, which searched the example depth only.
        return "fewshot" if value == "retrieval-search" else value
