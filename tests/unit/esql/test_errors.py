"""Kibana's texts for a failed ES|QL run: the client's message of an Elasticsearch error, and the rest."""

from __future__ import annotations

from typing import Any

import pytest

from job.ruletypes.esql import errors

UNKNOWN_COLUMN = {
    "error": {
        "root_cause": [{"type": "verification_exception", "reason": "Found 1 problem\nline 1:1: Unknown column [x]"}],
        "type": "verification_exception",
        "reason": "Found 1 problem\nline 1:1: Unknown column [x]",
    },
    "status": 400,
}
SYNTAX = {
    "error": {
        "root_cause": [{"type": "parsing_exception", "reason": "line 1:16: mismatched input '<EOF>'"}],
        "type": "parsing_exception",
        "reason": "line 1:16: mismatched input '<EOF>'",
        "caused_by": {"type": "input_mismatch_exception", "reason": None},
    },
    "status": 400,
}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            UNKNOWN_COLUMN,  # the spec's example, as Kibana shows it
            "verification_exception\n\tRoot causes:\n\t\tverification_exception: Found 1 problem\n"
            "line 1:1: Unknown column [x]",
        ),
        (
            SYNTAX,
            "parsing_exception\n\tCaused by:\n\t\tinput_mismatch_exception: null\n\tRoot causes:\n"
            "\t\tparsing_exception: line 1:16: mismatched input '<EOF>'",
        ),
        (
            {"error": {"type": "x", "root_cause": [{"type": "y"}, "odd"]}},
            "x\n\tRoot causes:\n\t\ty: undefined\n\t\tundefined: undefined",
        ),
        ({"error": "plain"}, '{"error":"plain"}'),
        ("gateway said no", "gateway said no"),
        (None, "Response Error"),
    ],
)
def test_error_message(body: Any, message: str) -> None:
    assert errors.error_message(body) == message


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (UNKNOWN_COLUMN, "verification_exception: Found 1 problem; line 1:1: Unknown column [x]"),
        (SYNTAX, "parsing_exception: line 1:16: mismatched input '<EOF>'"),
        ({"error": {"type": "t", "reason": "r"}}, "t: r"),
    ],
)
def test_reason_is_one_line(body: Any, reason: str) -> None:
    assert errors.reason(body) == reason


def test_a_long_reason_is_cut_and_says_so() -> None:
    message = errors.error_message({"error": {"type": "x" * 5000}})
    assert message.startswith("x" * errors.MAX_REASON_LENGTH) and message.endswith("(5000 characters in all)")


@pytest.mark.parametrize(
    ("message", "user"),
    [
        (errors.error_message(UNKNOWN_COLUMN), True),
        (errors.error_message(SYNTAX), True),
        ("index_not_found_exception\n\tRoot causes: ...", True),
        ("'x' is not an IP string literal.", True),
        ("circuit_breaking_exception: [parent] Data too large", False),
    ],
)
def test_user_errors(message: str, user: bool) -> None:
    assert errors.is_user_error(message) is user


def test_texts() -> None:
    assert errors.failed_message("boom") == 'An error occurred during rule execution: message: "boom"'
    assert errors.unprocessed_exceptions_warning([]) is None
    assert errors.unprocessed_exceptions_warning(["a", "b"]) == (
        "The following exceptions won't be applied to rule execution: a, b"
    )
