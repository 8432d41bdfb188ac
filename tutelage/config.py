"""Run configuration: YAML file -> one frozen pydantic model, with `--set a.b=c` overrides.

Unknown keys fail loudly (``extra="forbid"``) naming the key and the file.

Example:
    >>> from tutelage.config import load_config
    >>> cfg = load_config(None, ["loop.rounds=2"])
    >>> cfg.loop.rounds
    2
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tutelage.errors import ConfigError

__all__ = [
    "AcceptConfig",
    "AgentConfig",
    "BudgetConfig",
    "CurateConfig",
    "EmbedderConfig",
    "FieldMap",
    "GepaConfig",
    "GuardConfig",
    "HFConfig",
    "LoopConfig",
    "MemoryConfig",
    "MiproConfig",
    "Policy",
    "RoleConfig",
    "ServeConfig",
    "RunConfig",
    "SuiteConfig",
    "TrackingConfig",
    "default_config_path",
    "load_config",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServeConfig(_Frozen):
    """How tutelage starts ``vllm serve MODEL`` for a ``vllm`` role that names no ``api_base``.

    The server listens on 127.0.0.1 (``port``; 0: a free one) with runtime LoRA loading on, and is
    stopped when the run ends, fails, is interrupted, or its process is killed. ``args`` are passed to
    ``vllm serve`` as they are (``["--dtype", "bfloat16"]``).
    """

    port: int = Field(0, ge=0, le=65535)
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=16)
    max_lora_rank: int = Field(16, ge=1, le=512)
    max_loras: int = Field(4, ge=1, le=64)
    args: tuple[str, ...] = ()
    start_timeout: float = Field(900.0, gt=0, description="seconds to wait for /health (loading weights)")


class RoleConfig(_Frozen):
    """One model role (student or teacher).

    ``provider`` names a model backend (``tutelage.backends.BACKENDS``): ``local`` starts llama.cpp's
    server on the GGUF file at ``model_path`` (default: the packaged SmolLM2-135M); ``openai`` talks
    to any OpenAI-compatible endpoint (vLLM, llama.cpp, OpenAI) at ``api_base``. ``none`` (the
    teacher only, also written ``teacher: off``) runs without a teacher: the memory holds gold
    examples only. An unknown provider fails when the endpoints are opened, naming the known ones.
    ``vllm`` attaches to the vLLM server at ``api_base``, or, with no ``api_base``, starts ``vllm
    serve MODEL`` itself (``serve``).

    ``api_base`` may be a list of replicas serving the same model: requests are spread over them
    (LiteLLM's Router), a replica that stops answering is taken out and its requests retried on the
    others, and each ledger row names the replica that answered. ``constrain_labels``: on a suite with
    a closed label set, ask an endpoint that can (vLLM) to reply with exactly one label (structured
    outputs) instead of reading a free reply as the nearest label.
    """

    provider: str = Field("local", min_length=1)
    model: str = Field("smollm2-135m-instruct", min_length=1)
    model_path: str | None = Field(
        None,
        min_length=1,
        description="local provider: the GGUF file to serve; default the packaged SmolLM2-135M",
    )
    api_base: str | tuple[str, ...] | None = None
    api_key_env: str | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(64, ge=1, le=32768)
    stop: tuple[str, ...] = ()
    timeout: float = Field(60.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    retries: int = Field(2, ge=0, le=10)
    price_in: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="USD per million prompt tokens")
    price_out: float = Field(
        0.0, ge=0.0, allow_inf_nan=False, description="USD per million completion tokens"
    )
    program: str | None = Field(
        None,
        min_length=3,
        description="student only: your agent as an import path pkg.mod:attr (a DSPy module, a "
        "LangGraph graph or fn(task, lessons)); it calls this role's model through tutelage.agent_lm()",
    )
    serve: ServeConfig = ServeConfig()
    constrain_labels: bool = True

    @field_validator("api_base")
    @classmethod
    def _replicas(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        if isinstance(value, tuple):
            if not value or not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError("a list of replicas needs at least one non-empty URL")
            if len(set(value)) != len(value):
                raise ValueError("the same replica is listed twice")
            return value[0] if len(value) == 1 else value
        return value

    @property
    def replicas(self) -> tuple[str, ...]:
        """Every ``api_base`` this role names (empty: none)."""
        if self.api_base is None:
            return ()
        return (self.api_base,) if isinstance(self.api_base, str) else self.api_base


class EmbedderConfig(_Frozen):
    """Where lesson embeddings come from: the packaged MiniLM, or an OpenAI-compatible /v1/embeddings."""

    provider: Literal["local", "openai"] = "local"
    model: str = "all-MiniLM-L6-v2"
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float = Field(30.0, gt=0)


class CurateConfig(_Frozen):
    """Curation after each round: retire bad records, merge near-duplicates, enforce a budget per scope."""

    retire_min_hurt: int = Field(3, ge=1)
    retire_hurt_share: float = Field(0.75, gt=0.0, le=1.0)
    merge_threshold: float | None = Field(0.95, gt=0.0, le=1.0)
    max_active: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)


class MemoryConfig(_Frozen):
    """The lesson store, how lessons are admitted and curated, and what the student sees.

    ``verify`` (what a kept lesson has shown; every check uses the memory as the round's attempts saw
    it, with the lessons made from the task being tried hidden, so no check is a copy test):

    - ``off``: nothing; every candidate is activated.
    - ``source``: a strategy fixes the failure it was written for; an example (gold, worked or
      synthetic, which carries its source's answer, so re-asking the source would test copying) does
      not make the ``probe_size`` most similar other train items of the round worse (transfer).
    - ``probe``: as ``source``, and a strategy must also not make those similar items worse.

    ``synthetic``: synthetic examples the teacher writes per failure: new inputs near the confusion
    with the failure's answer (suites whose replies are answers, not reasoning; for a label suite,
    one naming another label than the gold one is dropped). ``worked``: ask for a worked solution
    of each failure (suites whose replies are reasoning); kept only when it reaches the gold answer.

    ``examples``: which attempted train items become gold-labelled example lessons. ``attempted``
    (default) stores every item of the batch, so intents the student already answers get examples
    too; ``failed`` stores only the failures the teacher diagnosed (a smaller memory). Measured on
    Banking77 with ``bench/coverage.py`` (k-NN label vote of 100 test items): a failures-only memory
    of 880 items 77/100, all 2,400 items the same rounds attempted 89/100, the whole train 92/100.

    ``trajectories``: a solved item whose attempt used a tool (an agent student) is stored as a worked
    example whose solution is the agent's own steps (its actions, the tools' results, its answer), as
    ExpeL keeps successful trajectories; off, it is a plain gold example like any other.
    """

    embedder: EmbedderConfig = EmbedderConfig()
    # The LessonStore implementation (``tutelage.memory.store.STORES``): ``chroma`` (embedded, or the
    # server at ``url``) or ``jsonl`` (in memory, saved as one JSONL file; exact search, small memories).
    store: str = Field("chroma", min_length=1)
    url: str | None = None
    # Chroma's own rule: 3-512 characters of [a-zA-Z0-9._-], alphanumeric at both ends, no "..".
    collection: str = Field(
        "lessons", min_length=3, max_length=512, pattern=r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?$"
    )
    # On a Chroma server, each run's lessons live in ``<collection>-<namespace>``. Left empty, a new run
    # gets a namespace of its own (its name and a random suffix, kept in the run's config.yaml), so
    # runs sharing a server never see or change each other's lessons; set it to share on purpose.
    namespace: str | None = Field(
        None, min_length=1, max_length=200, pattern=r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?$"
    )
    k_examples: int = Field(4, ge=0, le=64)
    k_strategies: int = Field(0, ge=0, le=16)
    mmr: float | None = Field(None, ge=0.0, le=1.0)
    token_budget: int | None = Field(None, ge=1)
    verify: Literal["off", "source", "probe"] = "off"
    examples: Literal["attempted", "failed"] = "attempted"
    trajectories: bool = True
    synthetic: int = Field(2, ge=0, le=8)
    worked: bool = True
    probe_size: int = Field(3, ge=1, le=32)
    leakage_ngram: int = Field(8, ge=1, le=64)
    leakage_threshold: float = Field(0.5, gt=0.0, le=1.0)
    curate: CurateConfig = CurateConfig()

    @field_validator("collection", "namespace")
    @classmethod
    def _no_double_dot(cls, value: str | None) -> str | None:
        if value is not None and ".." in value:
            raise ValueError("a collection name may not contain '..'")
        return value

    @model_validator(mode="after")
    def _name_fits(self) -> MemoryConfig:
        if len(self.collection_name) > 512:
            raise ValueError("memory.collection and memory.namespace together exceed 512 characters")
        return self

    @property
    def collection_name(self) -> str:
        """The Chroma collection this memory lives in: ``collection``, then ``-namespace`` if set."""
        return self.collection if self.namespace is None else f"{self.collection}-{self.namespace}"

    @field_validator("verify", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` as false; `verify: off` must still mean "off".
        return "off" if value is False else value


SuiteName = Literal["banking77", "gsm8k", "bbh", "math500", "nlupp", "file", "hf"]


class FieldMap(_Frozen):
    """Which columns of a ``file`` or ``hf`` suite hold what.

    ``input`` and ``answer`` are required on every row; ``id`` (optional) must be unique, else rows are
    numbered; ``tags`` columns are kept as ``Task.tags`` for per-slice scores; ``split`` (optional)
    holds ``train``, ``dev`` or ``test`` per row.
    """

    input: str = "input"
    answer: str = "answer"
    id: str | None = None
    tags: tuple[str, ...] = ()
    split: str | None = None


class HFConfig(_Frozen):
    """A Hugging Face dataset for ``name: hf``: ``datasets.load_dataset(path, name, split=...)``.

    ``dev_split``/``test_split`` set to ``None`` carve that split from the train split with the seed.
    """

    path: str | None = None
    name: str | None = None
    revision: str | None = None
    train_split: str = "train"
    dev_split: str | None = None
    test_split: str | None = "test"


class SuiteConfig(_Frozen):
    """A task suite and its seeded splits (sizes are caps; ``None`` keeps the whole split).

    ``name``: ``banking77`` (packaged), ``gsm8k``, ``bbh``, ``math500``, ``nlupp`` (read from
    ``data_dir``, a folder holding e.g. ``gsm8k/train.jsonl``), ``file`` (your JSONL or CSV at ``path``)
    or ``hf`` (a Hugging Face dataset, ``hf``). ``seed`` drives every shuffle; ``dev_size`` items are
    carved from the train side, never from test; ``test_size`` caps the scored test items (the whole
    held-out side still guards lessons against leakage).

    Other keys:
        style: BBH prompt style, ``cot`` (published 3-shot chain of thought) or ``direct``.
        tasks: BBH subset by task name (``None``: all 27).
        domain: NLU++ domain, ``banking`` (when unset) or ``hotels``; its intents are the label set.
        path: ``file`` suites: a ``.jsonl`` or ``.csv`` file.
        fields: the column mapping of ``file`` and ``hf`` suites (see ``FieldMap``).
        metric: a grader name (``label``, ``gsm8k``, ``bbh``, ``math``, ``f1``, ``judge``) or an import
            path ``module:attr`` replacing the suite's own grader. ``judge`` grades with the teacher
            endpoint against ``rubric`` (one call per graded item, counted as the teacher's).
        rubric: what a good reply must do, in words (``metric: judge`` only).
        labels: the closed label set of a ``file``/``hf`` suite: each answer must be one of them, or
            with ``metric: f1`` a set of them (a list, or separated by commas or semicolons).
        instruction: replaces the suite's instruction to the student.
        hf: the dataset of an ``hf`` suite (see ``HFConfig``).
        show_labels: list the labels in the instruction; snap_to_labels: read a reply as the label it
            names or most resembles.
    """

    name: SuiteName = "banking77"
    data_dir: str | None = None
    seed: int = 0
    train_size: int | None = Field(None, ge=0)
    dev_size: int = Field(40, ge=1)
    test_size: int | None = Field(100, ge=1)
    show_labels: bool = True
    snap_to_labels: bool = True
    style: Literal["cot", "direct"] = "cot"
    tasks: tuple[str, ...] | None = None
    domain: Literal["banking", "hotels"] | None = None
    path: str | None = None
    fields: FieldMap = FieldMap()
    metric: str | None = Field(None, min_length=1)
    rubric: str | None = Field(None, min_length=1)
    labels: tuple[str, ...] | None = None
    instruction: str | None = Field(None, min_length=1)
    hf: HFConfig = HFConfig()

    @model_validator(mode="after")
    def _keys_fit_the_suite(self) -> SuiteConfig:
        if self.name == "file" and not self.path:
            raise ValueError("a file suite needs suite.path (a .jsonl or .csv file)")
        if self.path and Path(self.path).suffix.lower() not in (".jsonl", ".csv"):
            raise ValueError(f"suite.path must end in .jsonl or .csv, got {self.path!r}")
        if self.name == "hf" and not self.hf.path:
            raise ValueError("an hf suite needs suite.hf.path (a Hugging Face dataset name)")
        if self.tasks is not None and self.name != "bbh":
            raise ValueError("suite.tasks selects BBH tasks; it needs name: bbh")
        if self.tasks is not None and not self.tasks:
            raise ValueError("suite.tasks is empty; leave it out to run all BBH tasks")
        if self.domain is not None and self.name != "nlupp":
            raise ValueError("suite.domain selects the NLU++ domain; it needs name: nlupp")
        if self.metric == "judge" and not (self.rubric and self.rubric.strip()):
            raise ValueError("suite.metric: judge needs suite.rubric (what a good reply must do, in words)")
        if self.rubric and self.metric != "judge":
            raise ValueError("suite.rubric is read by the judge grader only; set suite.metric: judge")
        return self


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


LORA_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TrainData = Literal["gold", "correct", "context", "preference"]


class TrainConfig(_Frozen):
    """How the student's weights are trained in a round whose ``loop.schedule`` entry moves them.

    ``trainer`` names a ``tutelage.train.TRAINERS`` entry: ``peft`` (LoRA with transformers + peft +
    TRL; the ``train`` extra) or ``openai`` (the OpenAI fine-tuning API at ``api_base``). ``base`` is
    what ``peft`` loads: a GGUF file, an HF folder or hub id (default: the student's GGUF, the packaged
    SmolLM2 for the embedded student); for ``openai`` it is the model name to fine-tune (default
    ``student.model``). ``data`` says which rows of the kept rounds' fine-tune sets are trained on:
    ``gold`` (gold, worked and synthetic examples), ``correct`` (the student's own correct answers;
    with bare prompts, only those made without lessons shown), ``context`` (answers it got right with
    lessons shown, trained as targets for the prompt without them: context distillation),
    ``preference`` (alone: DPO with the ``peft`` trainer on the preference sets, the gold answer
    chosen over the student's wrong one, with strength ``beta``).
    ``prompts`` is what each row's prompt holds:
    ``retrieved`` (default) is the program's own request, with the lessons it retrieves for that row
    (its own hidden), so the weights learn to answer under the memory as the student is asked at test
    time; ``bare`` is the instruction and the task alone (weights meant to answer without the memory;
    ``context`` needs it).
    """

    trainer: str = Field("peft", min_length=1)
    base: str | None = Field(None, min_length=1)
    data: tuple[TrainData, ...] = Field(("gold", "correct"), min_length=1)
    prompts: Literal["retrieved", "bare"] = "retrieved"
    rank: int = Field(16, ge=1, le=1024)
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: tuple[str, ...] = Field(LORA_MODULES, min_length=1)
    epochs: float = Field(2.0, gt=0)
    max_steps: int | None = Field(None, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    batch_size: int = Field(8, ge=1)
    gradient_accumulation: int = Field(1, ge=1)  # batches per optimizer step: memory, not speed
    # tokens of prompt + answer; a longer row is left out (an answer cut off would teach nothing)
    max_length: int = Field(2048, ge=16)
    save_steps: int = Field(10, ge=1)
    beta: float = Field(0.1, gt=0)  # DPO: how far the tuned policy may move from the base
    # the openai trainer: where the fine-tuning API is, its key, how often to poll a job
    api_base: str | None = None
    api_key_env: str | None = None
    poll_seconds: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _context_is_bare(self) -> TrainConfig:
        if "preference" in self.data and (len(set(self.data)) > 1 or self.trainer != "peft"):
            raise ValueError(
                "train.data preference trains with DPO (the peft trainer) on preference pairs alone; "
                "it does not mix with gold, correct or context rows"
            )
        if "context" in self.data and self.prompts != "bare":
            raise ValueError(
                "train.data context trains answers as targets of the prompt without lessons; "
                "it needs train.prompts: bare"
            )
        return self


class TrackingConfig(_Frozen):
    """Optional MLflow logging of a finished run (needs ``pip install 'tutelage[tracking]'``).

    ``mlflow_uri`` unset: nothing is logged and mlflow is never imported. Set, e.g.
    ``sqlite:///runs/mlflow.db`` (offline; MLflow 3.x refuses a bare ``file:`` store) or an
    ``http(s)://`` tracking server: when a run (or a resumed run) finishes, its config, per-round and
    final metrics, tags and, with ``log_artifacts``, its report, metrics, playbook, config and kept
    program go to one MLflow run in ``experiment``, whose id is kept in the run's ``tracking.json``.
    """

    mlflow_uri: str | None = Field(None, min_length=1)
    experiment: str = Field("tutelage", min_length=1)
    log_artifacts: bool = True


class CheckpointConfig(_Frozen):
    """Where the loop's LangGraph checkpoints live (``tutelage.checkpoints.CHECKPOINTERS``).

    ``url`` unset: ``checkpoints.sqlite`` in the run folder. ``sqlite:///path/file.sqlite``: one SQLite
    file that many runs share, each under its own thread id (its run id).
    ``postgresql://user:password@host:5432/db`` (or ``postgres://``): a PostgreSQL database that many
    runs share the same way; needs ``pip install 'tutelage[postgres]'``. The tables are made on first use.
    """

    url: str | None = Field(None, min_length=1)


class RunConfig(_Frozen):
    """Everything one run needs; written resolved into its run directory."""

    name: str = Field("quickstart", min_length=1, max_length=200)
    runs_dir: str = Field("runs", min_length=1)
    seed: int = 0
    student: RoleConfig = RoleConfig(max_tokens=24)
    teacher: RoleConfig = RoleConfig(max_tokens=160)
    memory: MemoryConfig = MemoryConfig()
    suite: SuiteConfig = SuiteConfig()
    loop: LoopConfig = LoopConfig()
    guards: GuardConfig = GuardConfig()
    agent: AgentConfig = AgentConfig()
    tracking: TrackingConfig = TrackingConfig()
    checkpoints: CheckpointConfig = CheckpointConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # The run directory is runs_dir/name: a name is one folder name, never a path.
        if value in (".", "..") or any(c in value for c in "/\\\x00") or not value.isprintable():
            raise ValueError(
                f"must be a plain folder name (no '/', '\\', '..' or control characters): {value!r}"
            )
        return value

    @field_validator("teacher", mode="before")
    @classmethod
    def _teacher_off(cls, value: object) -> object:
        # `teacher: off` (YAML reads it as false) runs without a teacher: gold examples only.
        if value is False or value in ("off", "none"):
            return {"provider": "none"}
        return value

    @model_validator(mode="after")
    def _teacher_needed(self) -> RunConfig:
        if self.teacher.provider == "none":
            if self.loop.optimizer in ("mipro", "gepa"):
                raise ValueError(f"loop.optimizer {self.loop.optimizer} needs a teacher (teacher is off)")
            if self.suite.metric == "judge":
                raise ValueError("suite.metric: judge grades with the teacher, and the teacher is off")
        if self.student.provider == "none":
            raise ValueError("student.provider: none is not a student; use local or openai")
        self._own_agent_fits()
        trains = any(m != "prompt" for m in self.loop.schedule) or self.loop.optimizer in WEIGHT_OPTIMIZERS
        if trains:  # weights are trained: can they be served?
            served = {"peft": ("local", "vllm"), "openai": ("openai",)}.get(self.train.trainer)
            if served is not None and self.student.provider not in served:
                raise ValueError(
                    f"train.trainer {self.train.trainer} makes adapters that student.provider "
                    f"{self.student.provider} cannot serve (use {' or '.join(served)})"
                )
        if any(m != "prompt" for m in self.loop.schedule):
            if self.loop.optimizer in WEIGHT_OPTIMIZERS:
                raise ValueError(
                    f"loop.optimizer {self.loop.optimizer} trains the weights in compile, and "
                    "loop.schedule trains them again in train_weights: keep loop.schedule: [prompt]"
                )
            if self.agent.kind == "react" and self.train.prompts == "retrieved":
                raise ValueError(
                    "train.prompts: retrieved renders the plain student's request, not agent.kind "
                    "react's tool transcript; set train.prompts: bare"
                )
        return self

    def _own_agent_fits(self) -> None:
        if self.teacher.program is not None:
            raise ValueError("teacher.program is not read: only the student can be your own agent")
        if self.student.program is None:
            return
        if self.agent.kind != "plain":
            raise ValueError(
                "student.program is your own agent; agent.kind react is tutelage's own, drop one"
            )
        if self.loop.optimizer not in OWN_AGENT_OPTIMIZERS:
            raise ValueError(
                f"loop.optimizer {self.loop.optimizer} rewrites tutelage's own prompt; a student.program "
                f"agent takes {' or '.join(OWN_AGENT_OPTIMIZERS)} (the retrieval policy search)"
            )
        if any(m != "prompt" for m in self.loop.schedule):
            raise ValueError("student.program runs its own model calls: keep loop.schedule: [prompt]")

    @property
    def teacher_on(self) -> bool:
        return self.teacher.provider != "none"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


def default_config_path() -> Path:
    """The packaged quickstart config (Banking77 subset, embedded SmolLM2, 3 rounds)."""
    return Path(str(resources.files("tutelage").joinpath("quickstart.yaml")))


def _set_dotted(data: dict[str, Any], dotted: str) -> None:
    if "=" not in dotted:
        raise ConfigError(f"override {dotted!r} must look like key.sub=value")
    key, raw = dotted.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {dotted!r}: the value is not valid YAML ({exc.__class__.__name__})"
        ) from None


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where!r}"
    # pydantic's "Value error, " prefix says nothing; a check across keys names them itself
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{source}: {msg}" if not first["loc"] or msg.startswith(where) else f"{source}: {where}: {msg}"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (``None``: the packaged quickstart), apply overrides, validate.

    Raises:
        ConfigError: the file is missing, is not YAML, or has an unknown key or a bad value.
    """
    source = Path(path) if path is not None else default_config_path()
    if not source.is_file():
        raise ConfigError(f"config file not found: {source}")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    for item in overrides or []:
        _set_dotted(data, item)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, _culprit(exc, source, overrides or []))) from None


def _culprit(err: ValidationError, source: Path, overrides: list[str]) -> str:
    """Where a bad value came from: the ``--set`` that wrote its key (the last one wins), else the file."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    for item in reversed(overrides):
        key = item.split("=", 1)[0].strip()
        if loc and (loc == key or loc.startswith(key + ".") or key.startswith(loc + ".")):
            return f"{source} with --set {item}"
        if not loc and first["type"] == "value_error" and key in str(first["msg"]):
            return f"{source} with --set {item}"  # a check across sections names the keys it read
    return str(source)
