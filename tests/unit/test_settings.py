"""Settings: defaults, parsing, one-line errors that name the variable, secrets kept secret."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from job.config.settings import Settings, load_settings
from job.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults() -> None:
    settings = load_settings()
    assert settings.es_hosts == ("http://127.0.0.1:9200",)
    assert settings.es_verify_certs is True
    assert settings.alerts_max == 1000
    assert settings.max_catchup == timedelta(hours=24)
    assert settings.alerts_index == "detection-alerts-default"
    assert settings.run_timeout == timedelta(minutes=9)
    assert settings.dead_letter_index == "detection-deadletter-default"


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("DETECTION_ES_HOSTS", "https://a:9200, https://b:9200", "es_hosts", ("https://a:9200", "https://b:9200")),
        ("DETECTION_ES_VERIFY_CERTS", "false", "es_verify_certs", False),
        ("DETECTION_MAX_CATCHUP", "2h", "max_catchup", timedelta(hours=2)),
        ("DETECTION_PAGE_SIZE", "50", "page_size", 50),
        ("DETECTION_ALERTS_MAX", "10000", "alerts_max", 10000),
        ("DETECTION_RUN_TIMEOUT", "20m", "run_timeout", timedelta(minutes=20)),
        ("DETECTION_DEAD_LETTER_INDEX", "dead-letters", "dead_letter_index", "dead-letters"),
        ("DETECTION_CONCURRENCY", "1", "concurrency", 1),
        ("DETECTION_BULK_CONCURRENCY", "3", "bulk_concurrency", 3),
    ],
)
def test_values_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DETECTION_ES_REQUEST_TIMEOUT", "soon"),
        ("DETECTION_CONCURRENCY", "0"),
        ("DETECTION_BULK_CONCURRENCY", "17"),
        ("DETECTION_ES_REQUEST_TIMEOUT", "-1"),
        ("DETECTION_ES_HOSTS", "elastic:9200"),
        ("DETECTION_ES_VERIFY_CERTS", "maybe"),
        ("DETECTION_MAX_CATCHUP", "24 hours"),
        ("DETECTION_PAGE_SIZE", "0"),
        ("DETECTION_ALERTS_MAX", "lots"),
        ("DETECTION_RUN_TIMEOUT", "0m"),
    ],
)
def test_a_malformed_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_secrets_never_appear_in_repr_or_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DETECTION_ES_API_KEY", "api-key-s3cr3t")
    monkeypatch.setenv("DETECTION_ES_USERNAME", "elastic")
    monkeypatch.setenv("DETECTION_ES_PASSWORD", "p4ssw0rd-s3cr3t")
    settings = load_settings()
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s / %r", settings, settings)
    for text in (repr(settings), str(settings), caplog.text, str(settings.model_dump())):
        assert "s3cr3t" not in text
    assert settings.es_api_key is not None and settings.es_api_key.get_secret_value() == "api-key-s3cr3t"


def test_a_bad_secret_is_not_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", "ftp://user:hunter2-s3cr3t@host")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "s3cr3t" not in str(info.value)


def test_secrets_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "detection_es_api_key").write_text("from-a-file")
    monkeypatch.setenv("DETECTION_SECRETS_DIR", str(secrets))
    settings = load_settings()
    assert settings.es_api_key is not None and settings.es_api_key.get_secret_value() == "from-a-file"


def test_missing_secrets_directory_is_a_config_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DETECTION_SECRETS_DIR", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="DETECTION_SECRETS_DIR"):
        load_settings()


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError for frozen models
        settings.alerts_max = 5  # type: ignore[misc]
