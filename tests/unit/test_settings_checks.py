"""Settings checked at start: URLs, credentials in URLs, index names, TLS files, bounds, empty and
enormous values, settings files that are not files. Each case: a value that loads, or one line
(exit 2 from the CLI) naming the variable and never quoting a secret."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from job.client import esclient
from job.client.esclient import make_client
from job.config.indexnames import alias_name_problem, index_name_problem
from job.config.settings import MAX_VALUE_CHARS, Settings, load_settings
from job.errors import ConfigError

CANARY = "CANARY-s3cr3t-91c2"
TLS = Path(__file__).resolve().parent.parent / "fixtures" / "tls"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _error(monkeypatch: pytest.MonkeyPatch, **values: str) -> str:
    for key, value in values.items():
        monkeypatch.setenv(f"DETECTION_{key.upper()}", value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message and CANARY not in message
    return message


@pytest.mark.parametrize(
    ("value", "hosts"),
    [
        ("http://127.0.0.1:9200", ("http://127.0.0.1:9200",)),
        ("https://es.example.com", ("https://es.example.com:443",)),
        ("http://es.example.com", ("http://es.example.com:80",)),
        ("HTTPS://ES.example.com:9243/", ("https://ES.example.com:9243",)),
        ("https://proxy:8443/elastic/", ("https://proxy:8443/elastic",)),
        ("http://[::1]:9200", ("http://[::1]:9200",)),
        (" http://a:1 , http://b:2 ,", ("http://a:1", "http://b:2")),
    ],
)
def test_host_urls_are_normalised(monkeypatch: pytest.MonkeyPatch, value: str, hosts: tuple[str, ...]) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", value)
    assert load_settings().es_hosts == hosts


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("http://127.0.0.1:99999", "entry 1 is not a valid URL"),
        ("http://127.0.0.1:0", "entry 1: the port must be a number from 1 to 65535"),
        (f"http://127.0.0.1:{CANARY}", "entry 1 is not a valid URL"),
        ("http://", "entry 1 has no host"),
        ("http://[::1", "entry 1 is not a valid URL"),
        ("http://a:1,ftp://b", "entry 2 is not an http:// or https:// URL"),
        ("elastic:9200", "entry 1 is not an http:// or https:// URL"),
        ("http://a:1/?q=1", "takes no query (?) or fragment (#)"),
        ("http://a:1/#x", "takes no query (?) or fragment (#)"),
        ("http://a b:1", "entry 1 contains spaces or control characters"),
        (",", "expected one or more URLs"),
    ],
)
def test_bad_host_urls_name_the_entry(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    found = _error(monkeypatch, es_hosts=value)
    assert found.startswith("DETECTION_ES_HOSTS: ") and message in found, found


def test_credentials_in_a_url_move_into_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", f"https://elastic:{CANARY}%40x@es1:9200,https://elastic:{CANARY}%40x@es2")
    settings = load_settings()
    assert settings.es_hosts == ("https://es1:9200", "https://es2:443")
    assert settings.es_username == "elastic"
    assert settings.es_password is not None and settings.es_password.get_secret_value() == f"{CANARY}@x"
    assert CANARY not in repr(settings) + str(settings.model_dump())
    with make_client(settings) as client:
        expected = base64.b64encode(f"elastic:{CANARY}@x".encode()).decode()
        assert client._headers["authorization"] == f"Basic {expected}"
        assert all(node.config.host in ("es1", "es2") for node in client.transport.node_pool.all())
        assert CANARY not in repr([node.config for node in client.transport.node_pool.all()])


@pytest.mark.parametrize(
    "extra",
    [
        {"es_hosts": f"http://a:{CANARY}@h:1,http://b:{CANARY}@h:2"},
        {"es_hosts": f"http://a:{CANARY}@h:1", "es_username": "someone-else"},
        {"es_hosts": f"http://a:{CANARY}@h:1", "es_password": "another-password"},
        {"es_hosts": f"http://a:{CANARY}@h:1", "es_api_key": "abc"},
    ],
)
def test_conflicting_credentials_are_refused(monkeypatch: pytest.MonkeyPatch, extra: dict[str, str]) -> None:
    message = _error(monkeypatch, **extra)
    assert message.startswith("DETECTION_ES_HOSTS: entry 1 has a user and password that differ")


def test_the_same_credentials_given_twice_are_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", f"http://a:{CANARY}@h:1")
    monkeypatch.setenv("DETECTION_ES_USERNAME", "a")
    monkeypatch.setenv("DETECTION_ES_PASSWORD", CANARY)
    assert load_settings().es_hosts == ("http://h:1",)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("detection-alerts-default", None),
        ("ünïcode-alerts", None),
        (".hidden-alerts", None),
        ("", "cannot be empty"),
        ("Alerts", "must be lowercase"),
        ("ALERTS", "must be lowercase"),
        ("a b", "cannot contain ' '"),
        ("a,b", "cannot contain ','"),
        ("a*", "cannot contain '*'"),
        ("a#b", "cannot contain '#'"),
        ("a:b", "cannot contain ':'"),
        ('a\\/?"<>|', "cannot contain"),
        ("a\tb", "control characters"),
        ("-a", "cannot start with '-'"),
        ("_a", "cannot start with '_'"),
        ("+a", "cannot start with '+'"),
        (".", "cannot be '.' or '..'"),
        ("..", "cannot be '.' or '..'"),
        ("a" * 255, None),
        ("a" * 256, "at most 255 bytes"),
        ("é" * 128, "at most 255 bytes"),
    ],
)
def test_index_names_follow_elasticsearch_rules(name: str, problem: str | None) -> None:
    found = index_name_problem(name)
    assert found is None if problem is None else (found is not None and problem in found), found


@pytest.mark.parametrize(("length", "ok"), [(246, True), (247, False), (248, False)])
def test_an_alias_leaves_room_for_the_names_derived_from_it(length: int, ok: bool) -> None:
    # <alias>-000001 (7 more bytes) and <alias>-template (9 more) must stay within 255 bytes.
    assert (alias_name_problem("a" * length) is None) is ok


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"alerts_index": "Alerts"}, "DETECTION_ALERTS_INDEX: an index name must be lowercase"),
        ({"executions_index": "a,b"}, "DETECTION_EXECUTIONS_INDEX: an index name cannot contain ','"),
        ({"alerts_index": "a" * 250}, "DETECTION_ALERTS_INDEX: too long"),
        ({"alerts_index": "x", "executions_index": "x"}, "DETECTION_EXECUTIONS_INDEX: must differ"),
        ({"alerts_index": "x", "executions_index": "x-log"}, "DETECTION_EXECUTIONS_INDEX: 'x-log' would match"),
        ({"alerts_index": "log-alerts", "executions_index": "log"}, "DETECTION_ALERTS_INDEX: 'log-alerts' would match"),
        ({"executions_index": "a" * 250}, "DETECTION_EXECUTIONS_INDEX: too long"),  # room for <name>-000001
    ],
)
def test_bad_index_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], message: str
) -> None:
    assert _error(monkeypatch, **values).startswith(message)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_catchup": "999999999999d"}, "DETECTION_MAX_CATCHUP: invalid duration '999999999999d': at most 366d"),
        ({"schedule_interval": "99999999999999999999d"}, "DETECTION_SCHEDULE_INTERVAL: invalid duration"),
        ({"schedule_interval": "0s"}, "DETECTION_SCHEDULE_INTERVAL: invalid duration '0s': must be greater"),
        ({"max_catchup": "9" * 5000 + "s"}, "DETECTION_MAX_CATCHUP: invalid duration '9999"),
        ({"es_request_timeout": "nan"}, "DETECTION_ES_REQUEST_TIMEOUT: input should be a finite number"),
        ({"es_request_timeout": "inf"}, "DETECTION_ES_REQUEST_TIMEOUT: input should be a finite number"),
        ({"retry_max_seconds": "1e400"}, "DETECTION_RETRY_MAX_SECONDS: input should be a finite number"),
        ({"retry_max_seconds": "86401"}, "DETECTION_RETRY_MAX_SECONDS: input should be less than or equal to 86400"),
        ({"alerts_max": "9" * 30}, "DETECTION_ALERTS_MAX: input should be less than or equal to 100000"),
        ({"space_id": "a" * 256}, "DETECTION_SPACE_ID:"),
        ({"es_api_key": f"{CANARY}\nX-Injected: 1"}, "DETECTION_ES_API_KEY: an API key is printable ASCII"),
        ({"es_username": "a:b"}, "DETECTION_ES_USERNAME: a user name for basic authentication cannot contain ':'"),
        ({"max_catchup": "30d"}, "DETECTION_EXECUTIONS_RETENTION: 30d must be longer than DETECTION_MAX_CATCHUP (30d)"),
        ({"executions_retention": "1d", "max_catchup": "36h"}, "DETECTION_EXECUTIONS_RETENTION: 1d must be longer"),
        ({"executions_retention": "0d"}, "DETECTION_EXECUTIONS_RETENTION: invalid duration '0d'"),
        ({"executions_rollover": "max_docs=many"}, "DETECTION_EXECUTIONS_ROLLOVER: max_docs='many'"),
        ({"shutdown_grace": "20"}, "DETECTION_SHUTDOWN_GRACE: invalid duration '20'"),
        ({"auto_setup": "maybe"}, "DETECTION_AUTO_SETUP: input should be a valid boolean"),
    ],
)
def test_bounds_and_shapes(monkeypatch: pytest.MonkeyPatch, values: dict[str, str], message: str) -> None:
    found = _error(monkeypatch, **values)
    assert found.startswith(message), found
    assert len(found) < 300


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, (timedelta(days=30), timedelta(seconds=20), False)),
        (
            {"executions_retention": "off", "shutdown_grace": "2m", "auto_setup": "true"},
            (None, timedelta(minutes=2), True),
        ),
        ({"executions_retention": "90d", "max_catchup": "60d"}, (timedelta(days=90), timedelta(seconds=20), False)),
    ],
)
def test_lifecycle_and_shutdown_settings(
    monkeypatch: pytest.MonkeyPatch, values: dict[str, str], expected: tuple[object, ...]
) -> None:
    for key, value in values.items():
        monkeypatch.setenv(f"DETECTION_{key.upper()}", value)
    settings = load_settings()
    assert (settings.executions_retention, settings.shutdown_grace, settings.auto_setup) == expected


def test_a_year_is_the_longest_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_MAX_CATCHUP", "366d")
    monkeypatch.setenv("DETECTION_SCHEDULE_INTERVAL", "8784h")
    monkeypatch.setenv("DETECTION_EXECUTIONS_RETENTION", "off")  # a retention must exceed the catch-up
    settings = load_settings()
    assert settings.max_catchup == settings.schedule_interval == timedelta(days=366)


# Settings with no default: empty means unset. The others: empty is an error naming the variable.
OPTIONAL = {
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
}


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_an_empty_value_is_unset_or_an_error(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    monkeypatch.setenv(f"DETECTION_{field.upper()}", "")
    if field in OPTIONAL:
        assert getattr(load_settings(), field) is None
    else:
        assert _error(monkeypatch).startswith(f"DETECTION_{field.upper()}: ")


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_an_enormous_value_is_an_error_that_does_not_quote_it(monkeypatch: pytest.MonkeyPatch, field: str) -> None:
    # 100 KB: more than an environment variable of a Kubernetes pod should ever hold, less than Linux allows.
    monkeypatch.setenv(f"DETECTION_{field.upper()}", CANARY + "x" * 100_000)
    message = _error(monkeypatch)
    assert message == f"DETECTION_{field.upper()}: longer than {MAX_VALUE_CHARS} characters"


@pytest.mark.parametrize("field", ["es_password", "alerts_index", "rules_dir", "es_hosts"])
def test_a_nul_character_from_a_secret_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, field: str
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / f"detection_{field}").write_bytes(CANARY.encode() + b"\x00x")
    message = _error(monkeypatch, secrets_dir=str(secrets))
    assert message == f"DETECTION_{field.upper()}: contains a NUL character"


def test_an_api_key_from_a_secret_file_loses_its_trailing_newline(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "detection_es_api_key").write_text("ZW5jb2RlZC1rZXk=\n")
    monkeypatch.setenv("DETECTION_SECRETS_DIR", str(tmp_path))
    key = load_settings().es_api_key
    assert key is not None and key.get_secret_value() == "ZW5jb2RlZC1rZXk="


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: os.mkfifo(p), "not a regular file"),
        (lambda p: p.write_bytes(b"x" * (2 * 1024 * 1024)), "over the limit of 1048576 bytes for settings files"),
        (lambda p: p.write_bytes(b"\xff\xfe" + CANARY.encode()), "not UTF-8 text"),
        (lambda p: p.mkdir(), "cannot read"),
    ],
)
def test_settings_files_that_are_not_small_text_files(tmp_path: Path, make: object, message: str) -> None:
    # In a separate process: a FIFO that blocked would fail the test instead of hanging it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DETECTION_")}
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for path, variable in ((tmp_path / ".env", ".env"), (secrets / "detection_es_password", "DETECTION_ES_PASSWORD")):
        make(path)  # type: ignore[operator]
        result = subprocess.run(
            [sys.executable, "-m", "job", "validate"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env={**env, "DETECTION_SECRETS_DIR": str(secrets)},
        )
        assert result.returncode == 2
        [line] = result.stderr.splitlines()
        assert line.startswith(f"detection-job: {variable}") and message in line, line
        assert CANARY not in line
        if path.is_dir():
            path.rmdir()
        else:
            path.unlink()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"es_ca_certs": "missing.pem"}, "DETECTION_ES_CA_CERTS: missing.pem: cannot read: No such file or directory"),
        ({"es_ca_certs": "/dev/zero"}, "DETECTION_ES_CA_CERTS: /dev/zero: cannot read: not a regular file"),
        ({"es_ca_certs": str(TLS / "client.key")}, "DETECTION_ES_CA_CERTS: "),
        ({"es_ca_certs": str(TLS / "README.md")}, "DETECTION_ES_CA_CERTS: "),
        (
            {"es_client_cert": str(TLS / "client.key"), "es_client_key": str(TLS / "client.key")},
            "DETECTION_ES_CLIENT_CERT: ",
        ),
        (
            {"es_client_cert": str(TLS / "client.pem"), "es_client_key": str(TLS / "ca.pem")},
            "DETECTION_ES_CLIENT_KEY: ",
        ),
        (
            {"es_client_cert": str(TLS / "client.pem"), "es_client_key": str(TLS / "other.key")},
            "DETECTION_ES_CLIENT_KEY: ",
        ),
        (
            {"es_client_cert": str(TLS / "client.pem"), "es_client_key": str(TLS / "client-encrypted.key")},
            "DETECTION_ES_CLIENT_KEY: ",
        ),
        ({"es_client_cert": str(TLS / "client.pem")}, "DETECTION_ES_CLIENT_CERT: "),
        ({"es_client_key": str(TLS / "client.key")}, "DETECTION_ES_CLIENT_KEY: set DETECTION_ES_CLIENT_CERT too"),
        (
            {"es_hosts": "http://h:9200", "es_ca_certs": str(TLS / "ca.pem")},
            "DETECTION_ES_CA_CERTS: TLS files need https:// URLs",
        ),
    ],
)
def test_tls_files_are_checked_at_start(monkeypatch: pytest.MonkeyPatch, values: dict[str, str], message: str) -> None:
    values = {"es_hosts": "https://h:9200", **values}
    assert _error(monkeypatch, **values).startswith(message)


def test_good_tls_files_reach_the_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", "https://h:9200")
    monkeypatch.setenv("DETECTION_ES_CA_CERTS", str(TLS / "ca.pem"))
    monkeypatch.setenv("DETECTION_ES_CLIENT_CERT", str(TLS / "client.pem"))
    monkeypatch.setenv("DETECTION_ES_CLIENT_KEY", str(TLS / "client.key"))
    settings = load_settings()
    with make_client(settings) as client:
        [node] = client.transport.node_pool.all()
        assert (node.config.ca_certs, node.config.client_cert, node.config.client_key) == (
            str(TLS / "ca.pem"),
            str(TLS / "client.pem"),
            str(TLS / "client.key"),
        )


def test_unverified_tls_is_one_warning(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", "https://h:9200")
    monkeypatch.setenv("DETECTION_ES_VERIFY_CERTS", "false")
    esclient._warn_unverified.cache_clear()
    settings = load_settings()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            make_client(settings).close()
    warnings = [r for r in caplog.records if "DETECTION_ES_VERIFY_CERTS is false" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_verified_tls_warns_nothing(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", "https://h:9200")
    esclient._warn_unverified.cache_clear()
    with caplog.at_level(logging.WARNING):
        make_client(load_settings()).close()
    assert caplog.records == []


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (Path(__file__).resolve().parent.parent.parent / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`DETECTION_{name.upper()}`" not in readme]
    assert missing == []
