"""Training the weights, experiment tracking and where checkpoints live."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from tutelage.config._base import _Frozen

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
