"""Settings, read once at start from ``DETECTION_*`` variables, a ``.env`` file and a secrets folder.

Kubernetes mounts secrets as files; point ``DETECTION_SECRETS_DIR`` at the folder and name the
files after the variables in lower case (``detection_es_api_key``). Secret values are
``SecretStr``: they never appear in ``repr()``, logs or error messages.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from job.durations import parse_duration
from job.errors import ConfigError

ENV_PREFIX = "DETECTION_"
# A checkout reads rule_defs/ beside job/; an installed wheel carries the same files as job/rule_defs.
_CHECKOUT_RULES_DIR = Path(__file__).resolve().parent.parent / "rule_defs"
SHIPPED_RULES_DIR = (
    _CHECKOUT_RULES_DIR if _CHECKOUT_RULES_DIR.is_dir() else Path(__file__).resolve().parent / "rule_defs"
)


class Settings(BaseSettings):
    """Every setting of the job. Field ``es_hosts`` is the variable ``DETECTION_ES_HOSTS``, and so on."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    # Connection
    es_hosts: Annotated[tuple[str, ...], NoDecode] = ("http://127.0.0.1:9200",)
    es_api_key: SecretStr | None = None
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_verify_certs: bool = True
    es_request_timeout: float = Field(default=30.0, gt=0, le=3600)

    # Rules
    rules_dir: Path = SHIPPED_RULES_DIR
    alerts_max: int = Field(default=1000, ge=1, le=100_000)

    # Run
    alerts_index: str = Field(default="detection-alerts-default", min_length=1)
    executions_index: str = Field(default="detection-executions-default", min_length=1)
    # Value lists, in Kibana's document shape (Kibana's own: .lists-<space> and .items-<space>).
    lists_index: str = Field(default="detection-lists-default", min_length=1)
    list_items_index: str = Field(default="detection-list-items-default", min_length=1)
    space_id: str = Field(default="default", pattern=r"^[a-z0-9_-]+$")
    page_size: int = Field(default=1000, ge=1, le=10_000)
    max_catchup: Annotated[timedelta, NoDecode] = timedelta(hours=24)
    schedule_interval: Annotated[timedelta, NoDecode] = timedelta(minutes=10)

    # Retries of transient Elasticsearch errors (connection, timeout, 429, 502/503/504)
    retry_attempts: int = Field(default=6, ge=1, le=100)
    retry_max_seconds: float = Field(default=120.0, gt=0)

    log_level: str = Field(default="INFO", pattern=r"^(?i:debug|info|warning|error)$")

    @field_validator("es_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            hosts = tuple(part.strip() for part in value.split(",") if part.strip())
            if not hosts:
                raise ValueError("expected one or more URLs separated by commas")
            return hosts
        return value

    @field_validator("es_hosts")
    @classmethod
    def _check_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for position, host in enumerate(value, start=1):
            # The URL itself is not echoed: it may carry credentials.
            if not host.startswith(("http://", "https://")):
                raise ValueError(f"entry {position} is not an http:// or https:// URL")
        return value

    @field_validator("max_catchup", "schedule_interval", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value


def _variable(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + str(loc[0]).upper() if loc else ENV_PREFIX + "*"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raise ``ConfigError`` naming the variable of the first bad value."""
    secrets_dir = os.environ.get(ENV_PREFIX + "SECRETS_DIR")
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise ConfigError(f"{ENV_PREFIX}SECRETS_DIR: {secrets_dir!r} is not a directory")
    try:
        if secrets_dir:
            return Settings(_secrets_dir=secrets_dir, **overrides)
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("msg", "invalid value"))
        raise ConfigError(f"{_variable(first['loc'])}: {message}") from None
