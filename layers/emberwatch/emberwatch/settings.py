"""Environment settings, read once at cold start and validated with messages that name the variable."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed."""


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Settings:
    table_name: str
    config_parameter: str
    stage: str = "dev"
    credentials_secret: str | None = None
    alert_topic_arn: str | None = None
    sender_email: str | None = None
    alert_link: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, require: tuple[str, ...] = ()) -> Settings:
        """Read settings from the environment; `require` names optional ones this function needs."""
        env = os.environ if env is None else env

        def get(name: str, required: bool = False) -> str | None:
            value = (env.get(name) or "").strip()
            if not value:
                if required:
                    raise SettingsError(f"environment variable {name} is required but not set")
                return None
            return value

        settings = cls(
            table_name=get("TABLE_NAME", True) or "",
            config_parameter=get("CONFIG_PARAMETER", True) or "",
            stage=get("STAGE") or "dev",
            credentials_secret=get("CREDENTIALS_SECRET"),
            alert_topic_arn=get("ALERT_TOPIC_ARN", "ALERT_TOPIC_ARN" in require),
            sender_email=get("SENDER_EMAIL", "SENDER_EMAIL" in require),
            alert_link=get("ALERT_LINK"),
        )
        if settings.alert_topic_arn and not settings.alert_topic_arn.startswith("arn:"):
            raise SettingsError(
                f"environment variable ALERT_TOPIC_ARN is not an ARN: {settings.alert_topic_arn!r}"
            )
        if settings.sender_email and not _EMAIL.match(settings.sender_email):
            raise SettingsError(
                f"environment variable SENDER_EMAIL is not an email address: {settings.sender_email!r}"
            )
        if not settings.config_parameter.startswith("/"):
            raise SettingsError(
                f"environment variable CONFIG_PARAMETER must be an SSM parameter name starting with '/': "
                f"{settings.config_parameter!r}"
            )
        return settings
