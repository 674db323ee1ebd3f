"""Settings, read once at start from ``DETECTION_*`` variables, a ``.env`` file and a secrets folder.

Kubernetes mounts secrets as files; point ``DETECTION_SECRETS_DIR`` at the folder and name the
files after the variables in lower case (``detection_es_api_key``). Secret values are
``SecretStr``: they never appear in ``repr()``, logs or error messages.

Everything is checked here, before anything connects: URLs (scheme, host, port), index names against
Elasticsearch's rules, durations against ``job.config.durations.MAX_DURATION``, TLS files readable and of the
right kind. A bad value is a ``ConfigError`` naming the variable, never quoting a value that may be
secret. Credentials written in a URL (``https://user:password@host``) are moved into
``es_username`` / ``es_password``, so that no URL the job holds, prints or logs carries a password.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from job.config.durations import parse_duration
from job.config.hosts import move_url_credentials, parse_host, split_hosts
from job.config.indexnames import AliasName, IndexName
from job.config.rollover import (
    DEFAULT_EXECUTIONS_ROLLOVER,
    DEFAULT_ROLLOVER,
    DISABLED,
    RolloverConditions,
    parse_rollover,
)
from job.config.shards import MAX_SHARDS, Shard, parse_shard, shard_from_completion_index
from job.config.tlsfiles import check_ca_bundle, check_client_certificate, check_client_key, check_key_pair
from job.errors import ConfigError
from job.text.redact import one_line, redact
from job.text.safefile import FileProblem, decode_utf8, read_bounded

ENV_PREFIX = "DETECTION_"
# A checkout reads rule_defs/ beside job/; an installed wheel carries the same files as job/rule_defs.
_PACKAGE = Path(__file__).resolve().parent.parent  # job/
_CHECKOUT_RULES_DIR = _PACKAGE.parent / "rule_defs"
SHIPPED_RULES_DIR = _CHECKOUT_RULES_DIR if _CHECKOUT_RULES_DIR.is_dir() else _PACKAGE / "rule_defs"
# No setting needs more; a longer value is a mistake (or an attack on the memory).
MAX_VALUE_CHARS = 65536
# .env and the files of the secrets folder.
MAX_SETTINGS_FILE_BYTES = 1024 * 1024
# Settings with no default: an empty value means "not set" (as a template that renders VAR="" means).
_OPTIONAL = (
    "es_api_key",
    "es_username",
    "es_password",
    "es_ca_certs",
    "es_client_cert",
    "es_client_key",
    "log_format",
    "pushgateway_url",
    "http_port",
    "alerts_retention",
    "schedule_interval",
    "shard",
    "shards",
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
    es_client_cert: Path | None = None
    es_client_key: Path | None = None
    es_verify_certs: bool = True
    es_request_timeout: float = Field(default=30.0, gt=0, le=3600, allow_inf_nan=False)

    # Rules
    rules_dir: Path = SHIPPED_RULES_DIR
    alerts_max: int = Field(default=1000, ge=1, le=100_000)

    # Run
    alerts_index: AliasName = "detection-alerts-default"
    # A rollover alias too (``<name>-000001``, ...), like the alerts alias.
    executions_index: AliasName = "detection-executions-default"
    # One document per event that could not become an alert (see ``detection-job deadletter``).
    dead_letter_index: IndexName = "detection-deadletter-default"
    # Value lists, in Kibana's document shape (Kibana's own: .lists-<space> and .items-<space>).
    lists_index: IndexName = "detection-lists-default"
    list_items_index: IndexName = "detection-list-items-default"
    space_id: str = Field(default="default", pattern=r"^[a-z0-9_-]+$", max_length=255)
    page_size: int = Field(default=1000, ge=1, le=10_000)
    max_catchup: Annotated[timedelta, NoDecode] = timedelta(hours=24)
    # The lease of one rule run: a run stops searching before it ends, and a ``running`` record older
    # than this is taken as abandoned by the next run.
    run_timeout: Annotated[timedelta, NoDecode] = timedelta(minutes=9)
    # Rules of a pass executed at once (threads sharing one client), and bulk requests of one rule run in
    # flight while it reads its next page (each holds one page of alerts: memory stays bounded).
    concurrency: int = Field(default=4, ge=1, le=64)
    bulk_concurrency: int = Field(default=2, ge=1, le=16)

    # Retries of transient Elasticsearch errors (connection, timeout, 429, 502/503/504)
    retry_attempts: int = Field(default=6, ge=1, le=100)
    retry_max_seconds: float = Field(default=120.0, gt=0, le=86400, allow_inf_nan=False)

    log_level: str = Field(default="INFO", pattern=r"^(?i:debug|info|warning|error)$")

    # Operations: log format, metrics, health endpoints, alert-index lifecycle
    log_format: Literal["ecs", "text"] | None = None  # None: text on a terminal, ECS JSON otherwise
    pushgateway_url: SecretStr | None = None  # may carry credentials (https://user:password@host)
    http_port: int | None = Field(default=None, ge=1, le=65535)
    http_host: str = Field(default="0.0.0.0", min_length=1)
    alerts_rollover: Annotated[RolloverConditions, NoDecode] = DEFAULT_ROLLOVER
    alerts_retention: Annotated[timedelta | None, NoDecode] = None
    # The execution log's lifecycle (``off``: never roll over / keep forever).
    executions_rollover: Annotated[RolloverConditions, NoDecode] = DEFAULT_EXECUTIONS_ROLLOVER
    executions_retention: Annotated[timedelta | None, NoDecode] = timedelta(days=30)

    # Least privilege: ``run``, ``schedule`` and ``backfill`` only check that ``setup`` ran, unless this is set
    # (then they install and maintain the indices themselves, with a key that can).
    auto_setup: bool = False
    # ``schedule``: how long the running rules may take to finish after SIGTERM or SIGINT.
    shutdown_grace: Annotated[timedelta, NoDecode] = timedelta(seconds=20)

    # Cadence and shards (job.run.selection): unset, each rule runs on its own interval, all rules here
    schedule_interval: Annotated[timedelta | None, NoDecode] = None  # every rule's cadence, when set
    shard: Annotated[Shard | None, NoDecode] = None  # I/N: only the rules of shard I of N
    shards: int | None = Field(default=None, ge=1, le=MAX_SHARDS)  # N of an Indexed Job (JOB_COMPLETION_INDEX)

    @model_validator(mode="before")
    @classmethod
    def _credentials_out_of_urls(cls, data: Any) -> Any:
        return move_url_credentials(data) if isinstance(data, dict) else data

    @field_validator("es_hosts", mode="before")
    @classmethod
    def _hosts_from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            hosts = split_hosts(value)
            if not hosts:
                raise ValueError("expected one or more URLs separated by commas")
            return hosts
        return value

    @field_validator("es_hosts")
    @classmethod
    def _check_hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("expected one or more URLs separated by commas")
        parsed = [parse_host(url, position) for position, url in enumerate(value, start=1)]
        hosts = []
        for position, (clean, user, _) in enumerate(parsed, start=1):
            if user is not None:  # left in place by _credentials_out_of_urls: they conflict
                raise ValueError(
                    f"entry {position} has a user and password that differ from another entry's, from "
                    f"{ENV_PREFIX}ES_USERNAME / {ENV_PREFIX}ES_PASSWORD, or come with {ENV_PREFIX}ES_API_KEY: "
                    "give the credentials once"
                )
            hosts.append(clean)
        return tuple(hosts)

    @field_validator("es_api_key")
    @classmethod
    def _check_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Sent as an HTTP header: printable ASCII only (a stray newline would break the header).
        if value is not None:
            key = value.get_secret_value().strip()
            if not all(0x21 <= ord(char) <= 0x7E for char in key):
                raise ValueError("an API key is printable ASCII without spaces (the encoded key Elasticsearch returns)")
            return SecretStr(key)
        return value

    @field_validator("es_username")
    @classmethod
    def _check_username(cls, value: str | None) -> str | None:
        if value is not None and (":" in value or any(ord(char) < 0x20 or ord(char) == 0x7F for char in value)):
            raise ValueError("a user name for basic authentication cannot contain ':' or control characters")
        return value

    @field_validator("es_ca_certs")
    @classmethod
    def _check_ca(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_ca_bundle(value)
        return value

    @field_validator("es_client_cert")
    @classmethod
    def _check_client_cert(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_client_certificate(value)
        return value

    @field_validator("es_client_key")
    @classmethod
    def _check_client_key(cls, value: Path | None) -> Path | None:
        if value is not None:
            check_client_key(value)
        return value

    @field_validator("max_catchup", "run_timeout", "shutdown_grace", mode="before")
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

    @field_validator("executions_retention", mode="before")
    @classmethod
    def _parse_executions_retention(cls, value: Any) -> Any:
        if isinstance(value, str):
            return None if value.strip().lower() in DISABLED else parse_duration(value)
        return value

    @field_validator("alerts_rollover", "executions_rollover", mode="before")
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

    @field_validator("*", mode="before")
    @classmethod
    def _plain_text(cls, value: Any, info: Any) -> Any:
        # Defined after the other "before" validators so that it runs first (pydantic runs them in reverse).
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if not isinstance(text, str):
            return value
        if len(text) > MAX_VALUE_CHARS:
            raise ValueError(f"longer than {MAX_VALUE_CHARS} characters")
        if "\x00" in text:
            raise ValueError("contains a NUL character")
        if not text.strip():
            if info.field_name in _OPTIONAL:
                return None
            raise ValueError("empty")
        return value

    @model_validator(mode="after")
    def _check_together(self) -> Settings:
        # Errors without a field: the message starts with the variable it is about.
        if self.es_client_key is not None and self.es_client_cert is None:
            raise ValueError(f"{ENV_PREFIX}ES_CLIENT_KEY: set {ENV_PREFIX}ES_CLIENT_CERT too (the key's certificate)")
        if self.es_client_cert is not None:
            try:
                check_key_pair(self.es_client_cert, self.es_client_key)
            except ValueError as exc:
                variable = "ES_CLIENT_KEY" if self.es_client_key is not None else "ES_CLIENT_CERT"
                raise ValueError(f"{ENV_PREFIX}{variable}: {exc}") from None
        tls_files = [name for name in ("es_ca_certs", "es_client_cert", "es_client_key") if getattr(self, name)]
        plain = [position for position, url in enumerate(self.es_hosts, start=1) if url.startswith("http://")]
        if tls_files and plain:
            raise ValueError(
                f"{ENV_PREFIX}{tls_files[0].upper()}: TLS files need https:// URLs, and entry {plain[0]} of "
                f"{ENV_PREFIX}ES_HOSTS is http://"
            )
        for field_name in ("executions_index", "dead_letter_index"):
            variable, name = f"{ENV_PREFIX}{field_name.upper()}", getattr(self, field_name)
            if name == self.alerts_index:
                raise ValueError(f"{variable}: must differ from {ENV_PREFIX}ALERTS_INDEX")
            if name.startswith(self.alerts_index + "-"):
                raise ValueError(
                    f"{variable}: {name!r} would match the pattern of the alert indices ({self.alerts_index}-*) "
                    "and get their template; choose a name outside it"
                )
        if self.dead_letter_index == self.executions_index:
            raise ValueError(f"{ENV_PREFIX}DEAD_LETTER_INDEX: must differ from {ENV_PREFIX}EXECUTIONS_INDEX")
        if self.alerts_index.startswith(self.executions_index + "-"):
            raise ValueError(
                f"{ENV_PREFIX}ALERTS_INDEX: {self.alerts_index!r} would match the pattern of the execution log's "
                f"indices ({self.executions_index}-*); choose a name outside it"
            )
        if self.executions_retention is not None and self.executions_retention <= self.max_catchup:
            raise ValueError(
                f"{ENV_PREFIX}EXECUTIONS_RETENTION: {_days(self.executions_retention)} must be longer than "
                f"{ENV_PREFIX}MAX_CATCHUP ({_days(self.max_catchup)}): a run plans its window from records that old"
            )
        return self


def _days(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _variable(loc: tuple[int | str, ...]) -> str:
    return ENV_PREFIX + str(loc[0]).upper() if loc else ENV_PREFIX + "*"


def _message(error: Any) -> str:
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if not error["loc"] and message.startswith(ENV_PREFIX):
        return message
    return f"{_variable(error['loc'])}: {message[:1].lower() + message[1:]}"


def _check_settings_file(path: Path, variable: str) -> None:
    """A ``.env`` or secret file must be a small regular UTF-8 file (a FIFO would block the start)."""
    try:
        decode_utf8(read_bounded(path, MAX_SETTINGS_FILE_BYTES, what="settings files"))
    except FileProblem as exc:
        raise ConfigError(f"{variable}: {one_line(str(path))}: {exc}") from None


def _check_settings_files(secrets_dir: str | None) -> None:
    if os.path.lexists(".env"):
        _check_settings_file(Path(".env"), ".env")
    if not secrets_dir:
        return
    names = {f"{ENV_PREFIX}{name}".lower(): name for name in Settings.model_fields}
    try:
        entries = sorted(os.scandir(secrets_dir), key=lambda entry: entry.name)
    except OSError as exc:
        raise ConfigError(f"{ENV_PREFIX}SECRETS_DIR: cannot read it: {exc.strerror or exc}") from None
    for entry in entries:
        field = names.get(entry.name.lower())
        if field is not None:
            _check_settings_file(Path(entry.path), f"{ENV_PREFIX}{field.upper()} (secret file)")


def load_settings(**overrides: Any) -> Settings:
    """Read the settings; raise ``ConfigError`` naming the variable of the first bad value."""
    secrets_dir = os.environ.get(ENV_PREFIX + "SECRETS_DIR")
    if secrets_dir and not Path(secrets_dir).is_dir():
        raise ConfigError(f"{ENV_PREFIX}SECRETS_DIR: {one_line(secrets_dir)!r} is not a directory")
    _check_settings_files(secrets_dir)
    try:
        settings = Settings(_secrets_dir=secrets_dir, **overrides) if secrets_dir else Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(one_line(redact(_message(exc.errors()[0])))) from None
    except (OSError, UnicodeError, ValueError) as exc:  # a settings source that cannot be read
        raise ConfigError(f"{ENV_PREFIX}*: the settings cannot be read: {one_line(redact(str(exc)))}") from None
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
