"""The global alerts cap: min(max_signals, alerts_max), and Kibana's warning text when it bites."""

from __future__ import annotations

import pytest

from job.rules import Rule, effective_max_signals
from job.rules.model import QueryRule


def _rule(max_signals: int) -> Rule:
    return QueryRule(
        rule_id="r",
        name="R",
        description="",
        type="query",
        query="a:b",
        index=("x",),
        severity="low",
        risk_score=21,
        max_signals=max_signals,
    )


@pytest.mark.parametrize(
    ("max_signals", "alerts_max", "expected"),
    [
        (100, 1000, 100),
        (1000, 1000, 1000),
        (10000, 1000, 1000),
        (10000, 10000, 10000),
        (10000, 100000, 10000),
        (1, 1, 1),
    ],
)
def test_effective_max_signals(max_signals: int, alerts_max: int, expected: int) -> None:
    effective, warning = effective_max_signals(_rule(max_signals), alerts_max)
    assert effective == expected
    assert (warning is not None) == (max_signals > alerts_max)


def test_warning_is_kibanas_text_word_for_word() -> None:
    _, warning = effective_max_signals(_rule(10000), 1000)
    assert warning == (
        "The rule's max alerts per run setting (10000) is greater than the Kibana alerting limit (1000). "
        "The rule will only write a maximum of 1000 alerts per rule run."
    )


def test_alerts_max_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="alerts_max"):
        effective_max_signals(_rule(10), 0)
