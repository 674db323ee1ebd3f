"""DETECTION_ALERTS_ROLLOVER / _RETENTION, DETECTION_HTTP_PORT and DETECTION_PUSHGATEWAY_URL settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from job.config.rollover import DEFAULT_ROLLOVER, parse_rollover
from job.config.settings import load_settings
from job.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("max_age=30d,max_primary_shard_size=50gb", DEFAULT_ROLLOVER),
        ("max_docs=1000000", (("max_docs", 1000000),)),
        (" MAX_AGE = 12H , min_docs=10 ", (("max_age", "12h"), ("min_docs", 10))),
        (
            "max_size=500mb,max_primary_shard_docs=200000000",
            (("max_size", "500mb"), ("max_primary_shard_docs", 200000000)),
        ),
        ("max_age=90m,", (("max_age", "90m"),)),
        ("off", ()),
        ("None", ()),
    ],
)
def test_parse_rollover(text: str, expected: tuple[tuple[str, str | int], ...]) -> None:
    assert parse_rollover(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_age", "expected name=value"),
        ("max_age=", "expected name=value"),
        ("max_ages=30d", "unknown condition 'max_ages'"),
        ("max_age=30 days", "max_age='30 days': expected a positive age"),
        ("max_age=0d", "expected a positive age"),
        ("max_docs=1e6", "expected a positive count"),
        ("max_docs=-5", "expected a positive count"),
        ("max_primary_shard_size=50", "expected a positive size"),
        ("max_size=1.5gb", "expected a positive size"),
        ("max_age=1d,max_age=2d", "given twice"),
        ("min_docs=1", r"at least one max_\* condition"),
        ("", "expected conditions"),
        (",", "expected conditions"),
    ],
)
def test_parse_rollover_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rollover(text)


def test_defaults_of_the_operations_settings() -> None:
    settings = load_settings()
    assert settings.alerts_rollover == DEFAULT_ROLLOVER
    assert settings.alerts_retention is None
    assert settings.http_port is None
    assert settings.pushgateway_url is None
    assert settings.log_format is None


@pytest.mark.parametrize(
    ("variable", "value", "field", "expected"),
    [
        ("DETECTION_ALERTS_ROLLOVER", "max_docs=5", "alerts_rollover", (("max_docs", 5),)),
        ("DETECTION_ALERTS_RETENTION", "90d", "alerts_retention", timedelta(days=90)),
        ("DETECTION_ALERTS_RETENTION", "", "alerts_retention", None),
        ("DETECTION_HTTP_PORT", "9102", "http_port", 9102),
        ("DETECTION_HTTP_PORT", "", "http_port", None),
        ("DETECTION_HTTP_HOST", "127.0.0.1", "http_host", "127.0.0.1"),
    ],
)
def test_operations_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, expected: object
) -> None:
    monkeypatch.setenv(variable, value)
    assert getattr(load_settings(), field) == expected


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DETECTION_ALERTS_ROLLOVER", "max_age=forever"),
        ("DETECTION_ALERTS_RETENTION", "30 days"),
        ("DETECTION_HTTP_PORT", "0"),
        ("DETECTION_HTTP_PORT", "70000"),
        ("DETECTION_HTTP_PORT", "web"),
        ("DETECTION_PUSHGATEWAY_URL", "ftp://user:secret-CANARY@gateway:9091"),
    ],
)
def test_bad_operations_settings_stop_with_one_line(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as raised:
        load_settings()
    assert str(raised.value).startswith(f"{variable}: ")
    assert "CANARY" not in str(raised.value)


def test_the_pushgateway_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_PUSHGATEWAY_URL", "https://user:secret-CANARY@gateway:9091")
    settings = load_settings()
    assert "CANARY" not in repr(settings) and "CANARY" not in str(settings)


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    from job.config.settings import Settings
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") : readme.index("## Operations")]
    missing = [name for name in Settings.model_fields if f"`DETECTION_{name.upper()}`" not in table]
    assert missing == []
