"""The global cap on alerts per rule run (Kibana's ``xpack.alerting.rules.run.alerts.max``)."""

from __future__ import annotations

from job.rules.model import Rule


def cap_warning(max_signals: int, alerts_max: int) -> str:
    """Kibana's warning, word for word, when a rule asks for more alerts than the global cap allows."""
    return (
        f"The rule's max alerts per run setting ({max_signals}) is greater than the Kibana alerting limit "
        f"({alerts_max}). The rule will only write a maximum of {alerts_max} alerts per rule run."
    )


def effective_max_signals(rule: Rule, alerts_max: int) -> tuple[int, str | None]:
    """``min(rule.max_signals, alerts_max)`` and, when the rule asks for more, the warning to report."""
    if alerts_max < 1:
        raise ValueError(f"alerts_max must be at least 1, got {alerts_max}")
    if rule.max_signals > alerts_max:
        return alerts_max, cap_warning(rule.max_signals, alerts_max)
    return rule.max_signals, None
