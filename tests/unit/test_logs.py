"""Log lines: ECS JSON or text, the rule execution on every line (per thread), secrets scrubbed."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from job.config.settings import Settings, load_settings
from job.errors import ConfigError
from job.ops.logs import REDACTED, configure_logging, default_format, rule_context

log = logging.getLogger("job.test")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    import os

    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == "detection-job":
            root.removeHandler(handler)


def _capture(settings: Settings) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(settings, stream)
    return stream


def _ecs_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_ecs_lines_carry_the_rule_execution_inside_the_context_only() -> None:
    stream = _capture(Settings(log_format="ecs"))
    log.info("before")
    with rule_context("rule-1", "Credential theft", "exec-uuid-1"):
        log.warning("inside %s", "the rule")
    log.info("after")
    before, inside, after = _ecs_lines(stream)
    assert inside["message"] == "inside the rule"
    assert inside["log.level"] == "warning"
    assert inside["rule"] == {"id": "rule-1", "name": "Credential theft"}
    assert inside["kibana"]["alert"]["rule"]["execution"]["uuid"] == "exec-uuid-1"
    assert inside["log"]["logger"] == "job.test"
    assert "ecs.version" in inside and "@timestamp" in inside
    assert "rule" not in before and "rule" not in after and "kibana" not in after


def test_contexts_of_concurrent_threads_never_mix() -> None:
    stream = _capture(Settings(log_format="ecs"))
    barrier = threading.Barrier(4)

    def execute(number: int) -> None:
        with rule_context(f"rule-{number}", f"Rule {number}", f"exec-{number}"):
            for step in range(20):
                if step == 10:
                    barrier.wait(timeout=30)  # every thread is inside its context at once
                log.info("step %d of rule %d", step, number)

    threads = [threading.Thread(target=execute, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    lines = _ecs_lines(stream)
    assert len(lines) == 80
    for line in lines:
        number = line["message"].rsplit(" ", 1)[1]
        assert line["rule"]["id"] == f"rule-{number}"
        assert line["kibana"]["alert"]["rule"]["execution"]["uuid"] == f"exec-{number}"


def test_text_lines_name_the_rule_and_cannot_be_split_by_crafted_text() -> None:
    stream = _capture(Settings(log_format="text"))
    with rule_context("rule-1", 'Name "quoted"\nFAKE LINE', "exec-1"):
        log.info("event id %s", "a\nERROR forged line\x1b[2J")
    [line] = stream.getvalue().splitlines()
    assert "INFO job.test event id a\\nERROR forged line\\x1b[2J" in line
    assert line.endswith('[rule.id=rule-1 rule.name="Name \\"quoted\\"\\nFAKE LINE" execution=exec-1]')


def test_an_exception_is_logged_in_the_ecs_error_fields() -> None:
    stream = _capture(Settings(log_format="ecs"))
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("it failed")
    [line] = _ecs_lines(stream)
    assert line["error"]["type"] == "ValueError"
    assert line["error"]["message"] == "bad value"


SECRETS = {"api_key": "apikey-CANARY-value", "password": "pw-CANARY-1234"}


@pytest.mark.parametrize("log_format", ["ecs", "text"])
@pytest.mark.parametrize("credentials", ["api_key", "url"])
def test_secret_values_never_reach_a_line(log_format: str, credentials: str) -> None:
    if credentials == "api_key":
        auth: dict[str, Any] = {"es_api_key": SECRETS["api_key"], "es_hosts": ("https://es.example:9200",)}
    else:  # a password in the URL is moved into basic auth by the settings
        auth = {"es_hosts": (f"https://elastic:{quote(SECRETS['password'])}@es.example:9200",)}
    settings = Settings(
        log_format=log_format, pushgateway_url="https://push:push-CANARY-pw@gateway.example:9091", **auth
    )
    stream = _capture(settings)
    basic = base64.b64encode(f"elastic:{SECRETS['password']}".encode()).decode()
    configured = SECRETS["api_key"] if credentials == "api_key" else SECRETS["password"]
    with rule_context("rule-1", configured, "exec-1"):
        log.error("key %s, password %r, header Basic %s", SECRETS["api_key"], SECRETS["password"], basic)
        log.error("gateway %s", settings.pushgateway_url.get_secret_value())  # type: ignore[union-attr]
        log.error("a URL in a message: https://someone:url-CANARY-pw@es.example:9200/_bulk")
    output = stream.getvalue()
    if credentials == "api_key":
        output = output.replace(SECRETS["password"], "").replace(basic, "")  # not configured: not secret here
    else:
        output = output.replace(SECRETS["api_key"], "")
    assert "CANARY" not in output
    assert basic not in output
    assert output.count(REDACTED) >= 3


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(("tty", "expected"), [(True, "text"), (False, "ecs")])
def test_default_format_follows_whether_stdout_is_a_terminal(tty: bool, expected: str) -> None:
    assert default_format(_Stream(tty)) == expected


@pytest.mark.parametrize(("value", "expected"), [("ECS", "ecs"), ("text", "text"), ("", None)])
def test_log_format_setting(monkeypatch: pytest.MonkeyPatch, value: str, expected: str | None) -> None:
    monkeypatch.setenv("DETECTION_LOG_FORMAT", value)
    assert load_settings().log_format == expected


def test_an_unknown_log_format_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTION_LOG_FORMAT", "json")
    with pytest.raises(ConfigError, match="^DETECTION_LOG_FORMAT: "):
        load_settings()
