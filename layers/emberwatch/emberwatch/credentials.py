"""Source credentials from Secrets Manager (or an SSM SecureString), through Powertools Parameters.

The shared secret is one JSON object keyed by source name: {"x": {"bearer_token": "..."}, "reddit": {...}}.
A source whose configuration names its own `secret` reads that one instead: its JSON object is the
source's credentials ({"bearer_token": "..."}). Values are cached for `max_age` seconds per container and
never logged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SecretCredentials:
    """Reads the credentials secret once per `max_age` and hands each connector its own part."""

    def __init__(
        self, secret_id: str | None, *, max_age: int = 300, per_source: Mapping[str, str] | None = None
    ) -> None:
        self.secret_id = secret_id
        self.max_age = max_age
        self.per_source = dict(per_source or {})

    def _read(self, secret_id: str) -> Any:
        from aws_lambda_powertools.utilities import parameters

        if secret_id.startswith("/"):
            return parameters.get_parameter(secret_id, decrypt=True, transform="json", max_age=self.max_age)
        return parameters.get_secret(secret_id, transform="json", max_age=self.max_age)

    def for_source(self, source: str) -> dict[str, Any]:
        own = self.per_source.get(source)
        if own:
            data = self._read(own)
            return dict(data) if isinstance(data, dict) else {}
        if not self.secret_id:
            return {}
        data = self._read(self.secret_id)
        value = data.get(source) if isinstance(data, dict) else None
        return dict(value) if isinstance(value, dict) else {}

    def __repr__(self) -> str:  # never show more than where the secrets live
        return f"SecretCredentials({self.secret_id!r}, per_source={self.per_source!r})"
