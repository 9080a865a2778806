"""The configuration the functions run with: the SSM parameter if valid, else the last good one.

A configuration edited in SSM into something invalid must never stop the watching. The keeper parses
the parameter (cached by Powertools for `max_age` seconds); when it is invalid it logs every error, counts
a `ConfigInvalid` metric (an alarm watches it) and goes on with the last configuration that was valid:
the one this container had, or, in a fresh container, the copy persisted in the table (written whenever
a container first sees a new valid text). Only when there has never been a good one does it raise.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from .config import AppConfig, ConfigError, parse_config

logger = logging.getLogger(__name__)


def config_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ConfigKeeper:
    """Hands out the current configuration, falling back to the last good one (see the module doc)."""

    parameter_name: str
    load_text: Callable[[str], str]  # the SSM parameter's text (Powertools get_parameter with max_age)
    load_last_good: Callable[[], str | None]  # the persisted last good text, if any
    save_last_good: Callable[[str, str], None]  # persist (text, sha256) of a newly seen valid text
    on_invalid: Callable[[ConfigError | None], None] = lambda exc: None  # counts the ConfigInvalid metric
    _text: str | None = field(default=None, init=False)
    _config: AppConfig | None = field(default=None, init=False)
    _rejected: str | None = field(default=None, init=False)  # digest of the invalid text last logged

    @property
    def origin(self) -> str:
        return f"ssm:{self.parameter_name}"

    def get(self) -> AppConfig:
        text = str(self.load_text(self.parameter_name))
        if text == self._text and self._config is not None:
            return self._config
        if self._rejected == config_digest(text) and self._config is not None:
            self.on_invalid(None)  # still invalid: counted again (the alarm stays on), not logged again
            return self._config
        try:
            config = parse_config(text, origin=self.origin)
        except ConfigError as exc:
            return self._fallback(text, exc)
        digest = config_digest(text)
        try:
            self.save_last_good(text, digest)
        except Exception:  # the copy is a safety net: failing to write it must not fail the run
            logger.exception("could not persist the last good configuration")
        if self._text is not None:
            logger.info("configuration changed", extra={"config_sha256": digest[:12]})
        self._text, self._config, self._rejected = text, config, None
        return config

    def _fallback(self, text: str, exc: ConfigError) -> AppConfig:
        self.on_invalid(exc)
        digest = config_digest(text)
        if digest != self._rejected:  # every run counts the metric; the errors are logged once per text
            logger.error(
                "configuration in SSM is invalid; keeping the last good one",
                extra={"parameter": self.parameter_name, "errors": str(exc).splitlines()[1:] or [str(exc)]},
            )
            self._rejected = digest
        if self._config is not None:
            return self._config
        persisted = self.load_last_good()
        if persisted is None:
            raise ConfigError(f"{exc}\n(no earlier valid configuration to fall back on)") from exc
        config = parse_config(persisted, origin=f"{self.origin} (last good copy)")
        self._text, self._config = persisted, config
        return config
