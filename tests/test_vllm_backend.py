"""The vllm backend: attach like openai, and load, route and unload LoRA adapters at runtime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tutelage.backends import AdapterRoute, build_lm, open_endpoints, routed
from tutelage.backends.vllm import VLLMAdapterHost
from tutelage.config import RunConfig, load_config
from tutelage.errors import ConfigError, EndpointError
from tutelage.testing import ScriptedServer
from tutelage.train import Adapter


def _config(api_base: str | None) -> RunConfig:
    base = [f"student.api_base={api_base}"] if api_base else []
    return load_config(None, ["student.provider=vllm", "student.model=qwen", "teacher=off", *base])


def _lora(model: str, request: dict[str, Any]) -> str:
    return f"answered by {model}"


def _adapter(tmp_path: Path, name: str = "round-1", folder: str = "adapter") -> Adapter:
    path = tmp_path / folder
    path.mkdir(exist_ok=True)
    return Adapter(name, "qwen", path, "peft", {"rank": 16})


def _one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_an_adapter_loads_answers_by_name_beside_the_base_and_is_gone_once_unloaded(tmp_path: Path) -> None:
    adapter = _adapter(tmp_path)
    with ScriptedServer(lambda r: "base reply", model="qwen", adapter_reply=_lora) as server:
        cfg = _config(server.api_base)
        with open_endpoints(cfg) as endpoints:
            host = endpoints.adapters
            assert isinstance(host, VLLMAdapterHost)
            route = host.serve(adapter)
            assert route == AdapterRoute(model="round-1")
            assert host.serve(adapter) == route  # already loaded: still served, not an error
            assert server.loras == {"round-1": str(adapter.path)}
            cards = httpx.get(f"{endpoints.student}/models").json()["data"]
            assert [(c["id"], c.get("parent")) for c in cards] == [("qwen", None), ("round-1", "qwen")]

            base = build_lm(cfg.student, endpoints.student)
            tuned = routed(base, route)
            assert tuned("hello") == ["answered by round-1"]
            assert base("hello") == ["base reply"]
            assert [r["model"] for r in server.chat_requests()] == ["round-1", "qwen"]

            host.unload(adapter)
            host.unload(adapter)  # not loaded any more: nothing to do
            assert server.loras == {}
            with pytest.raises(Exception, match="The model `round-1` does not exist"):
                tuned("hello")
            assert base("hello") == ["base reply"]


def test_a_name_loaded_from_other_weights_is_reloaded_from_the_new_folder(tmp_path: Path) -> None:
    with ScriptedServer(model="qwen") as server:
        host = VLLMAdapterHost(server.api_base)
        host.serve(_adapter(tmp_path, folder="old"))
        host.serve(_adapter(tmp_path, folder="new"))
        assert server.loras == {"round-1": str(tmp_path / "new")}


def test_a_hosted_adapter_is_routed_by_name_without_loading(tmp_path: Path) -> None:
    with ScriptedServer(model="qwen") as server:
        host = VLLMAdapterHost(server.api_base)
        hosted = Adapter("static-lora", "qwen", None, "openai")
        assert host.serve(hosted) == AdapterRoute(model="static-lora")
        host.unload(hosted)
        assert server.requests == [] and server.loras == {}


def test_a_refused_load_is_one_line_saying_what_to_check(tmp_path: Path) -> None:
    missing = Adapter("round-2", "qwen", tmp_path / "nowhere", "peft", {"rank": 32})
    with ScriptedServer(model="qwen") as server:
        host = VLLMAdapterHost(server.api_base)
        with pytest.raises(EndpointError) as exc:
            host.serve(missing)
        message = _one_line(exc)
        assert f"refused to load LoRA adapter 'round-2' from {tmp_path / 'nowhere'} (HTTP 404" in message
        assert "No adapter found" in message
        assert "`vllm serve --enable-lora --max-lora-rank 32`" in message
        assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in message
        api_base = server.api_base
    with pytest.raises(EndpointError) as down:
        host.serve(_adapter(tmp_path))
    assert _one_line(down) == f"student endpoint {api_base} refused the connection"


def test_without_an_api_base_the_vllm_backend_needs_the_vllm_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `vllm` to start
    with pytest.raises(ConfigError) as exc, open_endpoints(_config(None)):
        pytest.fail("opened without an api_base or a vllm command")
    assert _one_line(exc) == (
        "student.provider vllm with no student.api_base starts `vllm serve`, but no `vllm` command is "
        "installed: `pip install 'tutelage[vllm]'` on a GPU machine, or set student.api_base to a "
        "running server"
    )
