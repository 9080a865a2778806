"""Source credentials from Secrets Manager (or an SSM SecureString), through Powertools Parameters.

The secret is one JSON object keyed by source name: {"x": {"bearer_token": "..."}, "reddit": {...}}.
Values are cached for `max_age` seconds per container and never logged.
"""

from __future__ import annotations

from typing import Any


class SecretCredentials:
    """Reads the credentials secret once per `max_age` and hands each connector its own part."""

    def __init__(self, secret_id: str | None, *, max_age: int = 300) -> None:
        self.secret_id = secret_id
        self.max_age = max_age

    def for_source(self, source: str) -> dict[str, Any]:
        if not self.secret_id:
            return {}
        from aws_lambda_powertools.utilities import parameters

        if self.secret_id.startswith("/"):
            data = parameters.get_parameter(
                self.secret_id, decrypt=True, transform="json", max_age=self.max_age
            )
        else:
            data = parameters.get_secret(self.secret_id, transform="json", max_age=self.max_age)
        value = data.get(source) if isinstance(data, dict) else None
        return dict(value) if isinstance(value, dict) else {}

    def __repr__(self) -> str:  # never show more than where the secret lives
        return f"SecretCredentials({self.secret_id!r})"
