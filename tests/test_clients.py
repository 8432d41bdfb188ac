"""A role's requests go through DSPy's native engine (LiteLLM cost ~10 ms of CPU a request, which
capped the eval harness near 85 items/s on 2 cores); requests that carry ``extra_body`` still go
through LiteLLM. Either way a failure means the same thing: retried or not, the item's or the run's."""

from __future__ import annotations

from typing import Any

import pytest

from tutelage.agents.ledger import Ledger
from tutelage.backends import AdapterRoute, build_lm, label_constraint, routed, systemic_error
from tutelage.config import RoleConfig
from tutelage.testing import ScriptedServer


def _lm(server: ScriptedServer, **role: Any) -> Any:
    cfg = RoleConfig(provider="openai", model="student", api_base=server.api_base, max_tokens=17, **role)
    return build_lm(cfg, server.api_base, name="student", ledger=Ledger())


def test_a_plain_request_skips_litellm_and_is_bounded_by_max_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    import litellm

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a plain request went through LiteLLM")

    monkeypatch.setattr(litellm, "completion", refuse)
    with ScriptedServer(lambda body: "card_arrival", model="student") as server:
        out = _lm(server, stop=("\n\n",))("my card?")
        body = server.chat_requests()[-1]
    assert out == ["card_arrival"]
    assert body["max_tokens"] == 17 and "max_completion_tokens" not in body and body["stop"] == ["\n\n"]


def test_requests_with_extra_body_still_reach_the_server_whole() -> None:
    with ScriptedServer(lambda body: "card_arrival", model="student") as server:
        lm = _lm(server)
        lm.constrains = True  # as on a vllm endpoint
        constrained = lm("my card?", **label_constraint(lm, ["card_arrival", "change_pin"]))
        adapter = routed(lm, AdapterRoute(model="round-2", body={"lora": [{"id": 0, "scale": 1.0}]}))
        adapter("my card?")
        first, second = server.chat_requests()[-2:]
    assert constrained == ["card_arrival"]
    assert first["structured_outputs"] == {"choice": ["card_arrival", "change_pin"]}
    assert first["max_tokens"] == 17 and second["max_tokens"] == 17
    assert second["model"] == "round-2" and second["lora"] == [{"id": 0, "scale": 1.0}]
    assert [c.ok for c in lm.ledger.calls] == [True, True]  # both metered


# fault -> (a retry may cure it, it stops the run rather than the item)
MEANING = {
    500: (True, False),
    503: (True, False),
    429: (True, False),
    "disconnect": (True, False),  # one dropped connection: the item's, until 8 in a row
    "not_json": (True, False),
    "hang": (True, False),
    400: (False, False),
    401: (False, True),  # a rejected key: every item would fail the same way
    404: (False, True),  # an unknown model: likewise
}


@pytest.mark.parametrize("extra_body", [False, True], ids=["native", "litellm"])
@pytest.mark.parametrize("fault", list(MEANING))
def test_a_failed_request_means_the_same_through_either_engine(fault: Any, extra_body: bool) -> None:
    retried, systemic = MEANING[fault]
    kwargs = {"extra_body": {"seed": 1}} if extra_body else {}
    with ScriptedServer(lambda body: "card_arrival", model="student") as server:
        lm = _lm(server, retries=1, timeout=0.5)
        server.fail_next(fault)
        try:
            out, error = lm("my card?", **kwargs), None
        except Exception as exc:
            out, error = None, exc
        rows = lm.ledger.calls
    if retried:
        assert out == ["card_arrival"] and len(rows) == 2 and rows[0].error.endswith("(retried)")
        return
    assert error is not None and len(rows) == 1 and not rows[0].ok
    assert (systemic_error(error, role="student") is not None) == systemic


@pytest.mark.parametrize("extra_body", [False, True], ids=["native", "litellm"])
def test_a_timeout_is_named_one_and_fails_only_its_item(extra_body: bool) -> None:
    kwargs = {"extra_body": {"seed": 1}} if extra_body else {}
    with ScriptedServer(lambda body: "card_arrival", model="student") as server:
        lm = _lm(server, retries=0, timeout=0.3)
        server.fail_next("hang")
        with pytest.raises(Exception) as caught:
            lm("my card?", **kwargs)
    assert "Timeout" in type(caught.value).__name__ and "Timeout" in lm.ledger.calls[0].error
    assert systemic_error(caught.value, role="student") is None


def test_openais_own_api_keeps_dspys_openai_route(monkeypatch: pytest.MonkeyPatch) -> None:
    # There DSPy bounds replies with max_completion_tokens (OpenAI's reasoning models refuse
    # max_tokens) and knows the prices; any other server gets max_tokens, which llama.cpp reads.
    monkeypatch.setenv("TUTELAGE_TEST_KEY", "sk-test")
    hosted = RoleConfig(provider="openai", model="gpt-4o-mini", api_key_env="TUTELAGE_TEST_KEY")
    assert build_lm(hosted, "https://api.openai.com/v1").model == "openai/gpt-4o-mini"
    assert build_lm(hosted, "http://127.0.0.1:8000/v1").model == "tutelage/gpt-4o-mini"
