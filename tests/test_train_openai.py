"""The openai trainer against the scripted fine-tuning API: upload, job, resume, failures, serving."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tutelage.backends import build_lm, open_endpoints, routed
from tutelage.config import TrainConfig, load_config
from tutelage.errors import ConfigError, DataError, EndpointError, RunDirError, TrainError
from tutelage.testing import ScriptedServer
from tutelage.train import Adapter, trainer

DEAD = "http://127.0.0.1:9/v1"  # the discard port: nothing listens
ROWS = [
    {
        "prompt": [
            {"role": "system", "content": "Answer with the intent."},
            {"role": "user", "content": f"Where is my card number {n}?"},
        ],
        "completion": [{"role": "assistant", "content": "card_arrival"}],
    }
    for n in range(3)
]


def _data(tmp_path: Path, rows: list[dict[str, Any]] = ROWS) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _options(api_base: str | None, **changes: Any) -> dict[str, Any]:
    settings = TrainConfig(trainer="openai", api_base=api_base, poll_seconds=0.01, epochs=2, batch_size=4)
    return {**settings.model_dump(), "name": "round-2 adapter!!", **changes}


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def _tuned(model: str, request: dict[str, Any]) -> str:
    return f"tuned by {model}"


def test_a_job_trains_on_the_rows_as_chat_and_the_tuned_model_answers_through_the_host(
    tmp_path: Path,
) -> None:
    steps: list[tuple[int, int, str]] = []
    with ScriptedServer(lambda r: "base reply", model="mini", adapter_reply=_tuned, job_polls=3) as server:
        adapter = trainer("openai").train(
            "mini",
            data=_data(tmp_path),
            out_dir=tmp_path / "train",
            seed=7,
            options=_options(server.api_base),
            progress=lambda step, total, message: steps.append((step, total, message)),
        )
        [(file_id, uploaded)] = server.uploads.items()
        assert [json.loads(line) for line in uploaded.decode().splitlines()] == [
            {"messages": row["prompt"] + row["completion"]} for row in ROWS
        ]
        [created] = server.job_creations()
        assert {k: created[k] for k in ("model", "training_file", "seed", "suffix", "method")} == {
            "model": "mini",
            "training_file": file_id,
            "seed": 7,
            "suffix": "round-2-adapter",
            "method": {
                "type": "supervised",
                "supervised": {
                    "hyperparameters": {"n_epochs": 2, "batch_size": 4, "learning_rate_multiplier": 1.0}
                },
            },
        }
        assert adapter.name == "ft:mini:round-2-adapter:0001"
        assert (adapter.base, adapter.path, adapter.trainer) == ("mini", None, "openai")
        assert adapter.meta["job_id"] == "ftjob-0001" and adapter.meta["training_file"] == file_id
        assert adapter.meta["examples"] == 3 and adapter.meta["trained_tokens"] > 0
        assert steps[-1][:2] == (3, 3) and "succeeded" in steps[-1][2]
        assert Adapter.from_json(json.loads(json.dumps(adapter.to_json()))) == adapter

        cfg = load_config(
            None,
            [
                "student.provider=openai",
                f"student.api_base={server.api_base}",
                "student.model=mini",
                "teacher=off",
            ],
        )
        with open_endpoints(cfg) as endpoints:
            assert endpoints.adapters is not None
            base = build_lm(cfg.student, endpoints.student)
            tuned = routed(base, endpoints.adapters.serve(adapter))
            assert tuned("Where is my card?") == [f"tuned by {adapter.name}"]
            assert base("Where is my card?") == ["base reply"]
        assert [r["model"] for r in server.chat_requests()] == [adapter.name, "mini"]


class Killed(Exception):
    """Stands for the process dying while the job runs."""


def _die(step: int, total: int, message: str) -> None:
    raise Killed


def test_a_killed_training_run_again_in_the_same_folder_polls_the_same_job(tmp_path: Path) -> None:
    data, out = _data(tmp_path), tmp_path / "train"
    with ScriptedServer(model="mini", job_polls=3) as server:
        with pytest.raises(Killed):
            trainer("openai").train(
                "mini", data=data, out_dir=out, seed=0, options=_options(server.api_base), progress=_die
            )
        assert server.jobs["ftjob-0001"]["status"] == "running"
        adapter = trainer("openai").train(
            "mini", data=data, out_dir=out, seed=0, options=_options(server.api_base)
        )
        assert len(server.job_creations()) == 1 and len(server.uploads) == 1
        assert adapter.meta["job_id"] == "ftjob-0001"


def test_a_kill_between_creating_the_job_and_saving_its_id_finds_the_job(tmp_path: Path) -> None:
    data, out = _data(tmp_path), tmp_path / "train"
    with ScriptedServer(model="mini", job_polls=3) as server:
        with pytest.raises(Killed):
            trainer("openai").train(
                "mini", data=data, out_dir=out, seed=0, options=_options(server.api_base), progress=_die
            )
        state = json.loads((out / "job.json").read_text())
        del state["job_id"]  # as if the kill came before the job's id was written
        (out / "job.json").write_text(json.dumps(state))
        adapter = trainer("openai").train(
            "mini", data=data, out_dir=out, seed=0, options=_options(server.api_base)
        )
        assert len(server.job_creations()) == 1 and adapter.meta["job_id"] == "ftjob-0001"


def test_other_rows_in_a_folder_with_a_job_are_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "train"
    with ScriptedServer(model="mini", job_polls=1) as server:
        trainer("openai").train(
            "mini", data=_data(tmp_path), out_dir=out, seed=0, options=_options(server.api_base)
        )
        with pytest.raises(RunDirError) as exc:
            trainer("openai").train(
                "mini", data=_data(tmp_path, ROWS[:1]), out_dir=out, seed=0, options=_options(server.api_base)
            )
        assert "belongs to another training" in _one_line(exc)
        assert len(server.job_creations()) == 1


def test_a_failed_job_is_one_line_naming_the_job_and_the_api_error(tmp_path: Path) -> None:
    with ScriptedServer(model="mini") as server:
        server.fail_next_job("Training file has 3 examples; at least 10 are required.")
        with pytest.raises(TrainError) as exc:
            trainer("openai").train(
                "mini",
                data=_data(tmp_path),
                out_dir=tmp_path / "t",
                seed=0,
                options=_options(server.api_base),
            )
    assert _one_line(exc).startswith(
        "fine-tuning job ftjob-0001 failed: Training file has 3 examples; at least 10 are required."
    )


def test_refusals_and_unreachable_apis_are_one_line(tmp_path: Path) -> None:
    data = _data(tmp_path)
    with pytest.raises(ConfigError) as missing:
        trainer("openai").train("mini", data=data, out_dir=tmp_path / "a", seed=0, options=_options(None))
    assert _one_line(missing) == "train.api_base is required when train.trainer is openai"
    with pytest.raises(EndpointError) as dead:
        trainer("openai").train("mini", data=data, out_dir=tmp_path / "b", seed=0, options=_options(DEAD))
    assert _one_line(dead) == f"fine-tuning API {DEAD} refused the connection"
    with ScriptedServer(model="mini") as server:
        server.fail_next(401)
        with pytest.raises(EndpointError) as key:
            trainer("openai").train(
                "mini", data=data, out_dir=tmp_path / "c", seed=0, options=_options(server.api_base)
            )
        assert _one_line(key) == f"fine-tuning API {server.api_base} rejected the API key (HTTP 401)"
        server.fail_when(lambda body: "training_file" in body, 400)
        with pytest.raises(TrainError) as refused:
            trainer("openai").train(
                "mini", data=data, out_dir=tmp_path / "d", seed=0, options=_options(server.api_base)
            )
        assert _one_line(refused).endswith("refused POST /fine_tuning/jobs (HTTP 400): scripted failure 400")
    (tmp_path / "bad.jsonl").write_text('{"messages": []}\n')
    with pytest.raises(DataError) as bad:
        trainer("openai").train(
            "mini", data=tmp_path / "bad.jsonl", out_dir=tmp_path / "e", seed=0, options=_options(DEAD)
        )
    assert _one_line(bad) == f"{tmp_path / 'bad.jsonl'}:1: expected a prompt-completion row"


def test_rows_not_in_chat_format_fail_the_scripted_job(tmp_path: Path) -> None:
    # The double checks what it is sent, so the conversion test above could fail.
    import httpx

    with ScriptedServer(model="mini", job_polls=1) as server:
        upload = httpx.post(
            f"{server.api_base}/files",
            data={"purpose": "fine-tune"},
            files={"file": ("x.jsonl", b'{"prompt": []}\n')},
        ).json()
        job = httpx.post(
            f"{server.api_base}/fine_tuning/jobs", json={"model": "mini", "training_file": upload["id"]}
        )
        done = httpx.get(f"{server.api_base}/fine_tuning/jobs/{job.json()['id']}").json()
    assert done["status"] == "failed" and "invalid training file" in done["error"]["message"]


def test_the_openai_backend_cannot_serve_local_adapter_weights(tmp_path: Path) -> None:
    with ScriptedServer(model="mini") as server:
        cfg = load_config(
            None, ["student.provider=openai", f"student.api_base={server.api_base}", "teacher=off"]
        )
        with open_endpoints(cfg) as endpoints, pytest.raises(ConfigError) as exc:
            assert endpoints.adapters is not None
            endpoints.adapters.serve(Adapter("round-1", "mini", tmp_path, "peft"))
    assert _one_line(exc) == (
        f"student.provider openai cannot load local adapter weights ({tmp_path}); use provider vllm or local"
    )
