"""The ``openai`` backend: the OpenAI-compatible URL a role names (vLLM, llama.cpp, OpenAI)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from tutelage.backends import AdapterHost, AdapterRoute
from tutelage.backends._lm import check_endpoint, resolve_api_key
from tutelage.config import RoleConfig
from tutelage.errors import ConfigError

__all__ = ["HostedAdapterHost", "OpenAIBackend"]


class OpenAIBackend:
    """Attach to each role's ``api_base`` and check that it answers with the role's key."""

    starts_servers: ClassVar[bool] = False

    @contextlib.contextmanager
    def open(
        self, *, roles: Mapping[str, RoleConfig], log_dir: Path | None = None
    ) -> Iterator[dict[str, str]]:
        bases: dict[str, str] = {}
        keys: dict[str, str] = {}
        self._bases, self._keys = bases, keys  # what ``adapter_host`` addresses
        for name, role in roles.items():
            if not role.replicas:
                raise ConfigError(f"{name}.api_base is required when {name}.provider is {role.provider!r}")
            keys[name] = resolve_api_key(role.api_key_env)
            for base in role.replicas:  # every replica must answer at the start
                check_endpoint(base, role=name, api_key=keys[name])
            bases[name] = role.replicas[0].rstrip("/")  # the first replica, for what addresses one endpoint
        yield bases

    def adapter_host(self, role: str) -> AdapterHost:
        """Serve tuned models hosted behind ``role``'s endpoint (valid inside ``open``)."""
        return HostedAdapterHost(role)


class HostedAdapterHost:
    """Tuned models the endpoint already serves by name (an OpenAI fine-tuning job's): nothing to load."""

    def __init__(self, role: str) -> None:
        self.role = role

    def serve(self, adapter: Any) -> AdapterRoute:
        if adapter.path is not None:
            raise ConfigError(
                f"{self.role}.provider openai cannot load local adapter weights ({adapter.path}); "
                "use provider vllm or local"
            )
        return AdapterRoute(model=adapter.name)

    def unload(self, adapter: Any) -> None:
        return None  # a hosted model stays where it is; rolling it back is not asking for it
