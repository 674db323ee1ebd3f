"""Logging: ECS JSON or text lines, the rule being executed on every line, secrets scrubbed.

``rule_context(rule_id, rule_name, execution_uuid)`` marks everything logged inside it, in this thread,
as part of that rule execution: the lines carry ``rule.id``, ``rule.name`` and
``kibana.alert.rule.execution.uuid`` (the field Kibana's event log and our alerts use for the execution).
The context lives in a ``ContextVar``, so rules executed concurrently in threads never see each
other's context.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, Literal

import ecs_logging

from job.config.secrets import secret_values
from job.config.settings import Settings
from job.text.redact import MASK, RedactingFilter
from job.text.table import printable

LogFormat = Literal["ecs", "text"]

RULE_ID, RULE_NAME, EXECUTION_UUID = "rule.id", "rule.name", "kibana.alert.rule.execution.uuid"
REDACTED = MASK  # the same mask as every other redacted text
# Shorter values are not scrubbed: replacing every "a" in every line would hide everything and reveal the value.
MIN_SECRET_LENGTH = 4
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


@dataclass(frozen=True, slots=True)
class RuleContext:
    rule_id: str
    rule_name: str
    execution_uuid: str


_current: ContextVar[RuleContext | None] = ContextVar("detection_rule_context", default=None)


@contextmanager
def rule_context(rule_id: str, rule_name: str, execution_uuid: str) -> Iterator[RuleContext]:
    """Within the block, every line logged by this thread names the rule and the execution."""
    context = RuleContext(rule_id, rule_name, execution_uuid)
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)


def current_rule_context() -> RuleContext | None:
    return _current.get()


class RuleContextFilter(logging.Filter):
    """Adds ``rule.id``, ``rule.name`` and the execution uuid to records logged inside ``rule_context``."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _current.get()
        if context is not None:
            setattr(record, RULE_ID, context.rule_id)
            setattr(record, RULE_NAME, context.rule_name)
            setattr(record, EXECUTION_UUID, context.execution_uuid)
        return True


class TextFormatter(logging.Formatter):
    """``time LEVEL logger message [rule.id=... rule.name=... execution=...]`` on one line."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        # Format a copy: other handlers (pytest's, say) must see the record as it was logged. Newlines and
        # terminal escapes in text from rule files or events cannot forge or hide lines.
        record = logging.makeLogRecord(record.__dict__)
        record.msg, record.args = printable(record.getMessage()), None
        line = super().format(record)
        rule_id = getattr(record, RULE_ID, None)
        if rule_id is not None:
            name = json.dumps(str(getattr(record, RULE_NAME, "")))
            line += f" [rule.id={printable(rule_id)} rule.name={name} "
            line += f"execution={getattr(record, EXECUTION_UUID, '')}]"
        return line


class RedactingFormatter(logging.Formatter):
    """Formats with ``inner`` and replaces every secret value, raw, JSON-escaped or base64 encoded."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        forms: set[str] = set()
        for secret in secrets:
            if len(secret) >= MIN_SECRET_LENGTH:
                forms.update({secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]})
        # Longest first, so a secret that contains another is replaced whole.
        self.forms = sorted(forms, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        for form in self.forms:
            line = line.replace(form, REDACTED)
        return line


def default_format(stdout: IO[str]) -> LogFormat:
    """``text`` for a person at a terminal, ``ecs`` for everything else (containers, files, pipes)."""
    try:
        return "text" if stdout.isatty() else "ecs"
    except (AttributeError, ValueError):
        return "ecs"


def make_formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "ecs":
        return ecs_logging.StdlibFormatter(exclude_fields=["log.original"])
    return TextFormatter()


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Send the job's log to ``stream`` (stderr) in the configured format; returns the handler installed.

    Replaces the handler an earlier call installed, so a process (or a test) can configure it again.
    """
    log_format = settings.log_format or default_format(sys.stdout)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name("detection-job")
    secrets = secret_values(settings)
    handler.setFormatter(RedactingFormatter(make_formatter(log_format), secrets))
    # Passwords of URLs in messages and exception texts (the formatter masks the configured secrets).
    handler.addFilter(RedactingFilter(secrets))
    handler.addFilter(RuleContextFilter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == "detection-job":
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # The transport logs every request, and every failed node, on its own; the job's retry
    # policy reports what matters in one line.
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    return handler
