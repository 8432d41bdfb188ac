"""LM clients for a role (``build_lm``), and replicas: one role served by several endpoints.

A role whose ``api_base`` is a list gets a ``ReplicatedLM``: each request goes to a replica the Router
picks; a replica that fails (refused connection, timeout, server error) is cooled down, out of the
rotation, and the request is retried on the others, so a replica that dies mid-run costs its in-flight
requests a retry each, not the items. Every ledger row names the replica that answered.

A role's requests go through DSPy's native engine (lm15) as the provider ``tutelage``, declared here:
an OpenAI-compatible chat server that bounds replies by ``max_tokens`` (llama.cpp and vLLM both do;
DSPy's ``openai`` route would send only ``max_completion_tokens``). Through LiteLLM an eval item cost
about 5 ms of CPU under the GIL, which held ``tutelage eval`` near 200 items/s on 2 cores; through the
native engine it costs about 1.3 ms (``bench/throughput.py``). Requests carrying ``extra_body`` (vLLM's
structured outputs, llama.cpp's per-request LoRA) go through LiteLLM at the same address
(``MeteredLM``).
"""

from __future__ import annotations

import warnings
from typing import Any

import dspy
import httpx

from tutelage.backends._lm import CallLedger, MeteredLM, _usage, resolve_api_key
from tutelage.config import RoleConfig

__all__ = ["COOLDOWN_SECONDS", "PROVIDER", "ReplicatedLM", "build_lm", "replica_router", "spread"]

COOLDOWN_SECONDS = 60.0  # out of the rotation after a failure; then tried again (it may be back)
# DSPy 3.4 still routes an LM subclass's own ``forward`` (its "legacy plugin" path) and says so on every
# call; 3.5 wants an engine object instead, which is where this moves when the pin does.
warnings.filterwarnings(
    "ignore", message="Implementing custom LMs through BaseLM.forward", category=DeprecationWarning
)
# Likewise for the OpenAI-style messages tutelage's LM passes through (DSPy's adapters make them).
warnings.filterwarnings(
    "ignore",
    message="Passing OpenAI-style message dictionaries",
    category=DeprecationWarning,
    module=r"tutelage\.backends\._lm",
)
_CLIENT = ("api_base", "api_key", "base_url", "model", "num_retries", "cache")


PROVIDER = "tutelage"  # a role's LM is ``tutelage/<model>``


def _declare_provider() -> None:
    from dspy.lm15 import (
        AccessPolicy,
        EndpointSupport,
        OpenAIChatCompat,
        ProviderDefinition,
        register_provider,
    )

    access = AccessPolicy(
        provider=PROVIDER,
        supports=EndpointSupport(complete=True, stream=True, models=True),
        auth_modes=("bearer",),
        base_url="http://127.0.0.1:8000/v1",  # never used: every role names its api_base
    )
    compat = OpenAIChatCompat(
        instruction_role="system",
        max_tokens_field="max_tokens",
        stream_usage="include",
        thinking_format="none",
        tool_result_name="omit",
        strict_tools="omit",
        cache_control="none",
        tool_result_media="reject",
    )
    register_provider(ProviderDefinition.chat(access, compat=compat))  # the same again is a no-op


_declare_provider()


def replica_router(model: str, replicas: tuple[str, ...], *, api_key: str, timeout: float) -> Any:
    """LiteLLM's Router over ``replicas`` (all serving ``model``): a failed replica is cooled down at
    its first failure and a request is tried on each replica at most once more."""
    from litellm.router import Router

    deployments = [
        {
            "model_name": model,
            "litellm_params": {
                "model": f"openai/{model}",
                "api_base": base,
                "api_key": api_key,
                "timeout": timeout,
            },
            "model_info": {"id": base},
        }
        for base in replicas
    ]
    return Router(
        model_list=deployments,
        routing_strategy="simple-shuffle",
        num_retries=len(replicas) - 1,
        retry_after=0,
        allowed_fails=0,
        cooldown_time=COOLDOWN_SECONDS,
        timeout=timeout,
    )


class ReplicatedLM(MeteredLM):
    """A ``MeteredLM`` whose requests go through a Router over the role's replicas.

    Copies share the Router (and so what it knows about dead replicas).
    """

    router: Any = None
    group: str = ""

    def forward(self, prompt: Any = None, messages: Any = None, **kwargs: Any) -> Any:
        settings = {k: v for k, v in {**self.kwargs, **kwargs}.items() if k not in _CLIENT and v is not None}
        messages = messages or [{"role": "user", "content": prompt}]
        response = self.router.completion(model=self.group, messages=messages, **settings)
        hidden = getattr(response, "_hidden_params", None) or {}
        _usage.replica = str(hidden.get("api_base") or hidden.get("model_id") or "")  # for the ledger row
        return response


def spread(lm: MeteredLM, role: RoleConfig, *, api_key: str) -> None:
    """Send ``lm``'s requests over ``role``'s replicas (``lm`` was built as a ``ReplicatedLM``)."""
    if not isinstance(lm, ReplicatedLM):
        raise TypeError("spread() needs a ReplicatedLM")
    lm.router = replica_router(role.model, role.replicas, api_key=api_key, timeout=role.timeout)
    lm.group = role.model


def build_lm(role: RoleConfig, api_base: str, *, name: str = "", ledger: CallLedger | None = None) -> dspy.LM:
    """A DSPy LM for one role, with generation always bounded by ``max_tokens``.

    With a ``ledger``, every call is recorded under the role ``name`` and budgets are enforced.
    """
    extra = {"stop": list(role.stop)} if role.stop else {}
    api_key = resolve_api_key(role.api_key_env)
    cls: type[MeteredLM] = MeteredLM
    if len(role.replicas) > 1:  # several endpoints: LiteLLM's Router spreads the requests
        cls = ReplicatedLM
    # OpenAI's own API: DSPy's openai route, which bounds replies with ``max_completion_tokens`` (its
    # reasoning models refuse ``max_tokens``); every other server: ours, with ``max_tokens``.
    prefix = "openai" if httpx.URL(api_base).host == "api.openai.com" else PROVIDER
    lm = cls(
        model=f"{prefix}/{role.model}",
        api_base=api_base,
        api_key=api_key,
        temperature=role.temperature,
        max_tokens=role.max_tokens,
        timeout=role.timeout,
        num_retries=0 if ledger is not None else role.retries,
        cache=False,
        **extra,
    )
    lm.role, lm.ledger, lm.retries = name, ledger, role.retries
    lm.constrains = role.provider == "vllm" and role.constrain_labels
    if len(role.replicas) > 1:
        spread(lm, role, api_key=api_key)
    return lm
