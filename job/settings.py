"""Settings, read once at start from ``DETECTION_*`` variables, a ``.env`` file and a secrets folder.

Kubernetes mounts secrets as files; point ``DETECTION_SECRETS_DIR`` at the folder and name the
files after the variables in lower case (``detection_es_api_key``). Secret values are
``SecretStr``: they never appear in ``repr()``, logs or error messages.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from job.durations import parse_duration
from job.errors import ConfigError
from job.rollover import DEFAULT_ROLLOVER, RolloverConditions, parse_rollover
from job.shards import MAX_SHARDS, Shard, parse_shard, shard_from_completion_index

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
    space_id: str = Field(default="default", pattern=r"^[a-z0-9_-]+$")
    page_size: int = Field(default=1000, ge=1, le=10_000)
    max_catchup: Annotated[timedelta, NoDecode] = timedelta(hours=24)

    # Retries of transient Elasticsearch errors (connection, timeout, 429, 502/503/504)
    retry_attempts: int = Field(default=6, ge=1, le=100)
    retry_max_seconds: float = Field(default=120.0, gt=0)

    log_level: str = Field(default="INFO", pattern=r"^(?i:debug|info|warning|error)$")

    # Operations: log format, metrics, health endpoints, alert-index lifecycle
    log_format: Literal["ecs", "text"] | None = None  # None: text on a terminal, ECS JSON otherwise
    pushgateway_url: SecretStr | None = None  # may carry credentials (https://user:password@host)
    http_port: int | None = Field(default=None, ge=1, le=65535)
    http_host: str = Field(default="0.0.0.0", min_length=1)
    alerts_rollover: Annotated[RolloverConditions, NoDecode] = DEFAULT_ROLLOVER
    alerts_retention: Annotated[timedelta | None, NoDecode] = None

    # Cadence and shards (job.run.selection): unset, each rule runs on its own interval, all rules here
    schedule_interval: Annotated[timedelta | None, NoDecode] = None  # every rule's cadence, when set
    shard: Annotated[Shard | None, NoDecode] = None  # I/N: only the rules of shard I of N
    shards: int | None = Field(default=None, ge=1, le=MAX_SHARDS)  # N of an Indexed Job (JOB_COMPLETION_INDEX)

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

    @field_validator("max_catchup", mode="before")
    @classmethod
    def _parse_duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("log_format", "http_port", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("alerts_retention", mode="before")
    @classmethod
    def _parse_retention(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_duration(value) if value.strip() else None
        return value

    @field_validator("alerts_rollover", mode="before")
    @classmethod
    def _parse_rollover(cls, value: Any) -> Any:
        return parse_rollover(value) if isinstance(value, str) else value

    @field_validator("schedule_interval", "shard", "shards", mode="before")
    @classmethod
    def _parse_cadence_and_shard(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        if not value.strip():
            return None
        if info.field_name == "schedule_interval":
            return parse_duration(value)
        return parse_shard(value) if info.field_name == "shard" else value

    @field_validator("pushgateway_url")
    @classmethod
    def _check_pushgateway(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("expected an http:// or https:// URL")  # not echoed: it may carry credentials
        return value


def _variable(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + str(loc[0]).upper() if loc else ENV_PREFIX + "*"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raise ``ConfigError`` naming the variable of the first bad value."""
    secrets_dir = os.environ.get(ENV_PREFIX + "SECRETS_DIR")
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise ConfigError(f"{ENV_PREFIX}SECRETS_DIR: {secrets_dir!r} is not a directory")
    try:
        settings = Settings(_secrets_dir=secrets_dir, **overrides) if secrets_dir else Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("msg", "invalid value"))
        raise ConfigError(f"{_variable(first['loc'])}: {message}") from None
    return _resolve_shard(settings, os.environ.get("JOB_COMPLETION_INDEX"))


def _resolve_shard(settings: Settings, completion_index: str | None) -> Settings:
    """Without DETECTION_SHARD, a pod of an Indexed Job (DETECTION_SHARDS=N) takes the shard of its index."""
    if settings.shards is None:
        return settings
    if settings.shard is not None:
        if settings.shard.count != settings.shards:
            raise ConfigError(f"{ENV_PREFIX}SHARD: {settings.shard} is not one of {ENV_PREFIX}SHARDS={settings.shards}")
        return settings
    if completion_index is None:
        return settings  # not a pod of the Indexed Job (a setup hook, say): run and schedule refuse to start
    try:
        shard = shard_from_completion_index(completion_index, settings.shards)
    except ValueError as exc:
        raise ConfigError(f"JOB_COMPLETION_INDEX: {exc}") from None
    return settings.model_copy(update={"shard": shard})
