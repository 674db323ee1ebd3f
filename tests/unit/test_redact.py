"""redact(), one_line() and the logging filter: passwords in URLs and secret values never get out."""

from __future__ import annotations

import logging
import time

import pytest

from job.text.redact import RedactingFilter, install_log_filter, one_line, redact

CANARY = "CANARY-pw-7f3a"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://user:secret@host:9200", "http://user:***@host:9200"),
        ("https://user:secret@host", "https://user:***@host"),
        ("https://user:p@ss@host/path", "https://user:***@host/path"),
        (
            "cannot reach http://u:a@h1:1, https://v:b@h2:2/x?y",
            "cannot reach http://u:***@h1:1, https://v:***@h2:2/x?y",
        ),
        ("http://user@host:9200", "http://user@host:9200"),  # no password to hide
        ("http://host:9200/a@b", "http://host:9200/a@b"),  # an @ in the path is not userinfo
        ("see 'http://u:s@h' and \"https://u:s@h\"", "see 'http://u:***@h' and \"https://u:***@h\""),
        ("http://u:***@host", "http://u:***@host"),
        ("no url here", "no url here"),
        ("://", "://"),
        ("a://b:c@", "a://b:***@"),
    ],
)
def test_url_passwords_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_secret_values_are_masked_anywhere() -> None:
    assert redact(f"key {CANARY} and again {CANARY}", [CANARY, ""]) == "key *** and again ***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("two\nlines", "two\\x0alines"),
        ("tab\there", "tab\\x09here"),
        ("nul\x00", "nul\\x00"),
        ("rtl \u202eexe.txt", "rtl \\u202eexe.txt"),
        ("line\u2028sep", "line\\u2028sep"),
        ("plain ünïcode ✓", "plain ünïcode ✓"),
    ],
)
def test_one_line_escapes_what_breaks_or_reorders_a_line(text: str, expected: str) -> None:
    assert one_line(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a://" * 50_000,
        "http://" + "a:" * 100_000,
        "://" + "b" * 200_000 + "@",
        "x" * 200_000,
    ],
)
def test_redact_is_linear_on_crafted_text(text: str) -> None:
    # A guard against quadratic scans, not a speed measurement: the bound is generous.
    started = time.monotonic()
    redact(text, [CANARY])
    one_line(text)
    assert time.monotonic() - started < 5


def test_the_filter_masks_messages_arguments_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    logger = logging.getLogger("test.redact")
    logger.propagate = False
    handler = Keep()
    logger.addHandler(handler)
    try:
        install_log_filter([CANARY], logger)
        logger.warning("url %s key %s", f"http://elastic:{CANARY}@h:9200", CANARY)
        try:
            raise ValueError(f"failed at https://elastic:{CANARY}@h:9200")
        except ValueError:
            logger.exception("boom")
    finally:
        logger.removeHandler(handler)
    assert records and all(CANARY not in record for record in records)
    assert "http://elastic:***@h:9200 key ***" in records[0]
    assert "https://elastic:***@h:9200" in records[1]


def test_a_record_with_a_broken_format_string_is_kept() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("many",), None)
    assert RedactingFilter().filter(record)
    assert "many" in record.getMessage()
