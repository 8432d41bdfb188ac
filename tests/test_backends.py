"""Model backends (issue 14): the registry, the contract a new backend meets, and each backend's endpoints."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tutelage.backends import BACKENDS, ModelBackend, backend, build_lm, open_endpoints
from tutelage.backends.local import LocalBackend, embedded_model_path
from tutelage.config import RoleConfig, RunConfig, load_config
from tutelage.errors import ConfigError, EndpointError
from tutelage.testing import ScriptedServer

DEAD = "http://127.0.0.1:9/v1"  # the discard port: nothing listens


def _config(*overrides: str) -> RunConfig:
    return load_config(None, list(overrides))


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("provider", sorted(BACKENDS))
def test_the_registry_resolves_each_provider_to_a_backend(provider: str) -> None:
    chosen: ModelBackend = backend(provider)
    module, _, attr = BACKENDS[provider].partition(":")
    assert type(chosen).__module__ == module and type(chosen).__name__ == attr
    assert chosen.starts_servers is (provider in ("local", "vllm"))  # vllm starts one when no api_base is set


def test_an_unknown_provider_loads_but_fails_to_open_in_one_line_naming_the_role() -> None:
    cfg = _config("teacher.provider=sglang")  # a new backend needs no config edit, so loading accepts it
    with pytest.raises(ConfigError) as exc, open_endpoints(cfg):
        pytest.fail("an unknown provider opened")
    assert _one_line(exc) == "teacher.provider 'sglang' is not a model backend (known: local, openai, vllm)"


def test_the_openai_backend_yields_the_base_and_a_built_lm_answers_through_it() -> None:
    with ScriptedServer(lambda request: "card_arrival", model="s") as server:
        cfg = _config(
            "student.provider=openai",
            f"student.api_base={server.api_base}/",  # a trailing slash is not part of the base
            "student.model=s",
            "teacher=off",
        )
        with open_endpoints(cfg) as endpoints:
            assert (endpoints.student, endpoints.teacher) == (server.api_base, "")
            assert build_lm(cfg.student, endpoints.student)("Where is my card?") == ["card_arrival"]
        assert [r["model"] for r in server.chat_requests()] == ["s"]


def test_the_openai_backend_fails_in_one_line_without_a_base_or_a_listener() -> None:
    with pytest.raises(ConfigError) as exc, open_endpoints(_config("student.provider=openai", "teacher=off")):
        pytest.fail("opened without an api_base")
    assert _one_line(exc) == "student.api_base is required when student.provider is 'openai'"
    cfg = _config("student.provider=openai", f"student.api_base={DEAD}", "teacher=off")
    with pytest.raises(EndpointError) as refused, open_endpoints(cfg):
        pytest.fail("opened a dead endpoint")
    assert _one_line(refused) == f"student endpoint {DEAD} refused the connection"


class FakeBackend:
    """A whole new backend: one class (here) and one registry line (``monkeypatch.setitem`` below)."""

    starts_servers: ClassVar[bool] = True
    events: ClassVar[list[tuple[str, tuple[str, ...]]]] = []

    @contextlib.contextmanager
    def open(
        self, *, roles: Mapping[str, RoleConfig], log_dir: Path | None = None
    ) -> Iterator[dict[str, str]]:
        FakeBackend.events.append(("start", tuple(roles)))
        try:
            yield {name: f"http://fake/{role.model}/v1" for name, role in roles.items()}
        finally:
            FakeBackend.events.append(("stop", tuple(roles)))


@pytest.fixture
def fake_registered(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[str, ...]]]:
    monkeypatch.setitem(BACKENDS, "fake", f"{__name__}:FakeBackend")
    monkeypatch.setattr(FakeBackend, "events", [])
    return FakeBackend.events


def test_a_backend_registered_at_run_time_serves_its_roles_and_stops_on_exit(
    fake_registered: list[Any],
) -> None:
    cfg = _config("student.provider=fake", "student.model=a", "teacher.provider=fake", "teacher.model=b")
    with open_endpoints(cfg, log_dir=None) as endpoints:
        assert (endpoints.student, endpoints.teacher) == ("http://fake/a/v1", "http://fake/b/v1")
        assert fake_registered == [("start", ("student", "teacher"))]  # one backend, opened once
    assert fake_registered[-1] == ("stop", ("student", "teacher"))


def test_attaching_backends_are_checked_before_a_server_is_started(fake_registered: list[Any]) -> None:
    cfg = _config("student.provider=fake", "teacher.provider=openai", f"teacher.api_base={DEAD}")
    with pytest.raises(EndpointError, match="teacher endpoint"), open_endpoints(cfg):
        pytest.fail("opened a dead teacher")
    assert fake_registered == []  # the typo failed before any server was started


class _Server:
    """Stands in for llama.cpp: records what it was asked to serve."""

    started: ClassVar[list[tuple[Path, int]]] = []

    def __init__(self, *, model_path: Path, parallel: int, log_path: Path | None) -> None:
        self.model_path, self.parallel = model_path, parallel
        self.api_base = f"http://local/{len(self.started)}/v1"

    def __enter__(self) -> _Server:
        _Server.started.append((self.model_path, self.parallel))
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def test_local_roles_share_a_server_per_gguf_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tutelage.backends.local.LocalServer", _Server)
    monkeypatch.setattr(_Server, "started", [])
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"GGUF")
    b.write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    same = {
        "student": RoleConfig(model_path="a.gguf", concurrency=2),
        "teacher": RoleConfig(model_path=str(a)),
    }
    with LocalBackend().open(roles=same) as bases:
        assert bases["student"] == bases["teacher"]  # two spellings of one file: one server
    assert _Server.started == [(a, 4)]  # as many slots as the busier role
    _Server.started.clear()
    apart = {"student": RoleConfig(model_path=str(a)), "teacher": RoleConfig(model_path=str(b))}
    with LocalBackend().open(roles=apart) as bases:
        assert bases["student"] != bases["teacher"]
    assert [path for path, _ in _Server.started] == [a, b]


def test_a_missing_model_file_fails_in_one_line_before_any_server_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tutelage.backends.local.LocalServer", _Server)
    monkeypatch.setattr(_Server, "started", [])
    missing = tmp_path / "nowhere.gguf"
    cfg = _config(f"teacher.model_path={missing}", f"student.model_path={tmp_path}")  # a folder is no file
    with pytest.raises(ConfigError) as exc, open_endpoints(cfg):
        pytest.fail("opened a missing model file")
    assert _one_line(exc) == f"student.model_path: no such file: {tmp_path}"
    assert _Server.started == []


@pytest.mark.slow
def test_the_local_backend_serves_any_gguf_file_a_role_names(tmp_path: Path) -> None:
    copy = tmp_path / "models" / "my-model.gguf"
    copy.parent.mkdir()
    shutil.copyfile(embedded_model_path(), copy)
    cfg = _config(
        f"student.model_path={copy}", "student.concurrency=1", "student.max_tokens=8", "teacher=off"
    )
    with open_endpoints(cfg, log_dir=tmp_path) as endpoints:
        assert endpoints.student.startswith("http://127.0.0.1:")
        [answer] = build_lm(cfg.student, endpoints.student)("Say hello.")
        assert isinstance(answer, str) and answer.strip()
    # the server loaded the file the role named, not the packaged default
    assert f"loading model '{copy}'" in (tmp_path / "llama-server.log").read_text()
