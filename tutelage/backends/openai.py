"""The ``openai`` backend: the OpenAI-compatible URL a role names (vLLM, llama.cpp, OpenAI)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar

from tutelage.backends._lm import check_endpoint, resolve_api_key
from tutelage.config import RoleConfig
from tutelage.errors import ConfigError

__all__ = ["OpenAIBackend"]


class OpenAIBackend:
    """Attach to each role's ``api_base`` and check that it answers with the role's key."""

    starts_servers: ClassVar[bool] = False

    @contextlib.contextmanager
    def open(
        self, *, roles: Mapping[str, RoleConfig], log_dir: Path | None = None
    ) -> Iterator[dict[str, str]]:
        bases: dict[str, str] = {}
        for name, role in roles.items():
            if not role.api_base:
                raise ConfigError(f"{name}.api_base is required when {name}.provider is {role.provider!r}")
            bases[name] = role.api_base.rstrip("/")
            check_endpoint(bases[name], role=name, api_key=resolve_api_key(role.api_key_env))
        yield bases
