"""Threshold and new-terms rules as the job's commands see them (pure): ``validate`` reports Kibana's messages on
the lines of the keys they concern, ``translate --rule`` prints the requests, the alert carries the type's
parameters, and a would-be alert becomes its document (or its dead letter)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from job.alerts.build import RunAlerts
from job.alerts.rule_fields import rule_fields
from job.alerts.template import alert_properties
from job.lists.plan import ExceptionPlan
from job.rules import load_rule
from job.rules.parts import ExceptionItem
from job.ruletypes.checks import check_rules
from job.writing.hit_alerts import HitAlert, HitAlerts, max_alerts_warning
from job.writing.suppressing import TRANSLATE_NOTE
from job.writing.writer import MAX_ALERTS_WARNING

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RULE = """\
[rule]
author = ["Us"]
description = "A test rule."
from = "now-6m"
index = ["logs-*"]
language = "kuery"
name = "R"
risk_score = 21
rule_id = "{rule_id}"
severity = "low"
type = "{kind}"
query = "event.category:authentication"
{keys}
"""
THRESHOLD = "\n[rule.threshold]\nfield = {fields}\nvalue = {value}\n"
NEW_TERMS = (
    '\n[rule.new_terms]\nfield = "new_terms_fields"\nvalue = {fields}\n'
    '[[rule.new_terms.history_window_start]]\nfield = "history_window_start"\nvalue = "{start}"\n'
)


def _file(tmp_path: Path, rule_id: str, kind: str, keys: str) -> Path:
    path = tmp_path / f"{rule_id}.toml"
    path.write_text(RULE.format(rule_id=rule_id, kind=kind, keys=keys))
    return path


def _line(path: Path, prefix: str, after: str = "") -> int:
    lines = path.read_text().splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(after)) if after else 0
    return next(n for n, line in enumerate(lines[start:], start=start + 1) if line.startswith(prefix))


@pytest.mark.parametrize(
    ("kind", "keys", "message", "line_of"),
    [
        (
            "threshold",
            THRESHOLD.format(fields='["a", "b", "c", "d"]', value=5),
            "threshold.field: Number of fields must be 3 or less",
            ("field =", ""),
        ),
        (
            "threshold",
            THRESHOLD.format(fields='["a"]', value=5) + '[[rule.threshold.cardinality]]\nfield = "a"\nvalue = 2\n',
            "threshold.cardinality.field: Cardinality of a field that is being aggregated on is always 1",
            ("field =", "[[rule.threshold.cardinality]]"),
        ),
        (
            "threshold",
            THRESHOLD.format(fields='["a"]', value=0),
            "threshold.value: Number must be greater than or equal to 1",
            ("value =", ""),
        ),
        (
            "new_terms",
            NEW_TERMS.format(fields='["a"]', start="now-5m"),
            "history_window_start: History window size is smaller than rule interval + additional lookback, "
            "'historyWindowStart' must be earlier than 'from'",
            ("value =", "[[rule.new_terms.history_window_start]]"),
        ),
        (
            "new_terms",
            NEW_TERMS.format(fields='["a"]', start="last week"),
            "history_window_start: Failed to parse 'historyWindowStart'",
            ("value =", "[[rule.new_terms.history_window_start]]"),
        ),
        (
            "new_terms",
            NEW_TERMS.format(fields='["a", "b", "c", "d"]', start="now-7d"),
            "new_terms_fields: Array must contain at most 3 element(s)",
            ("value =", "[rule.new_terms]"),
        ),
        (
            "new_terms",
            'new_terms_fields = []\nhistory_window_start = "now-7d"\n',
            "new_terms_fields: Array must contain at least 1 element(s)",
            ("new_terms_fields", ""),
        ),
        (
            "threshold",
            THRESHOLD.format(fields='["a"]', value=5)
            + '[rule.alert_suppression]\ngroup_by = ["a"]\nduration = { value = 5, unit = "m" }\n',
            "alert_suppression: a threshold rule groups by threshold.field; give only a duration",
            ("[rule.alert_suppression]", ""),
        ),
        (
            "threshold",  # Kibana's threshold suppression has no "per rule execution": a duration is required
            THRESHOLD.format(fields='["a"]', value=5) + "[rule.alert_suppression]\n",
            "alert_suppression.duration: a threshold rule suppresses over a duration",
            ("[rule.alert_suppression]", ""),
        ),
    ],
)
def test_validate_gives_kibanas_message_on_the_line_of_its_key(
    tmp_path: Path, kind: str, keys: str, message: str, line_of: tuple[str, str]
) -> None:
    path = _file(tmp_path, "r1", kind, keys)
    diagnostics = [d for d in check_rules([load_rule(path)], alerts_max=1000, now=NOW) if d.is_error]
    assert [(d.line, d.message) for d in diagnostics] == [(_line(path, *line_of), message)]


@pytest.mark.parametrize(
    "keys",
    [
        THRESHOLD.format(fields='["host.name", "user.name"]', value=25),
        THRESHOLD.format(fields='""', value=3) + '[[rule.threshold.cardinality]]\nfield = "user.name"\nvalue = 2\n',
        NEW_TERMS.format(fields='["host.name"]', start="now-14d"),
        'new_terms_fields = ["host.id", "user.name"]\nhistory_window_start = "now-30d/d"\n',
        # alert suppression as Kibana allows it: a threshold rule over a duration, a new-terms rule per group
        THRESHOLD.format(fields='["host.name"]', value=5)
        + '[rule.alert_suppression.duration]\nvalue = 5\nunit = "m"\n',
        NEW_TERMS.format(fields='["host.name"]', start="now-14d")
        + '[rule.alert_suppression]\ngroup_by = ["user.name"]\n',
        NEW_TERMS.format(fields='["host.name"]', start="now-14d")
        + '[rule.alert_suppression]\ngroup_by = ["user.name", "source.ip"]\nmissing_fields_strategy = "doNotSuppress"\n'
        + 'duration = {value = 1, unit = "h"}\n',
    ],
)
def test_good_rules_validate(tmp_path: Path, keys: str) -> None:
    kind = "threshold" if "threshold" in keys else "new_terms"
    assert check_rules([load_rule(_file(tmp_path, "r1", kind, keys))], alerts_max=1000, now=NOW) == []


def _translate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "job", "translate", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_translate_prints_a_threshold_rules_requests(tmp_path: Path) -> None:
    path = _file(tmp_path, "r1", "threshold", THRESHOLD.format(fields='["host.name"]', value=5))
    result = _translate("--rule", str(path))
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    groups, history = printed["requests"]
    assert groups["search"] == ["logs-*"]
    composite = groups["body"]["aggs"]["thresholdTerms"]["composite"]
    assert composite == {"sources": [{"host.name": {"terms": {"field": "host.name"}}}], "size": 10_000}
    time_range = groups["body"]["query"]["bool"]["filter"][1]
    assert time_range == {
        "range": {"@timestamp": {"gte": "now-6m", "lte": "now", "format": "strict_date_optional_time"}}
    }
    assert history["search"] == "<the alerts alias>"
    assert {"term": {"kibana.alert.rule.rule_id": "r1"}} in history["body"]["query"]["bool"]["filter"]
    assert printed["notes"] and TRANSLATE_NOTE not in printed["notes"]


@pytest.mark.parametrize(
    ("kind", "keys"),
    [
        (
            "threshold",
            THRESHOLD.format(fields='["host.name"]', value=5)
            + '[rule.alert_suppression.duration]\nvalue = 5\nunit = "m"\n',
        ),
        (
            "new_terms",
            NEW_TERMS.format(fields='["host.name"]', start="now-14d")
            + '[rule.alert_suppression]\ngroup_by = ["user.name"]\n',
        ),
    ],
)
def test_translate_says_how_a_suppressing_rule_writes(tmp_path: Path, kind: str, keys: str) -> None:
    result = _translate("--rule", str(_file(tmp_path, "r1", kind, keys)))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["notes"][-1] == TRANSLATE_NOTE


@pytest.mark.parametrize(
    ("fields", "phases"), [('["host.name"]', ["terms", "terms"]), ('["a", "b"]', ["composite"] * 2)]
)
def test_translate_prints_the_three_phases_of_a_new_terms_rule(tmp_path: Path, fields: str, phases: list[str]) -> None:
    path = _file(tmp_path, "r1", "new_terms", NEW_TERMS.format(fields=fields, start="now-14d"))
    result = _translate("--rule", str(path))
    assert result.returncode == 0, result.stderr
    requests = json.loads(result.stdout)["requests"]
    assert [next(iter(r["body"]["aggs"]["new_terms"])) for r in requests] == ["composite", *phases]
    history_range = json.dumps(requests[1]["body"]["query"])
    assert '"gte": "now-14d"' in history_range


@pytest.mark.parametrize(
    ("args", "code", "error"),
    [
        ((), 2, "give a KQL query or --rule FILE, not both"),
        (("a:b", "--rule", "x.toml"), 2, "give a KQL query or --rule FILE, not both"),
        (("--rule", "{missing}"), 1, "No such file"),
        (("--rule", "{refused}"), 1, "threat_match (indicator match) rules are not run by this job"),
        (("--rule", "{bad_kql}"), 1, "Expected"),
    ],
)
def test_translate_refusals(tmp_path: Path, args: tuple[str, ...], code: int, error: str) -> None:
    refused = RULE.format(rule_id="e", kind="threat_match", keys='threat_index = ["ti-*"]')
    (tmp_path / "refused.toml").write_text(refused)
    bad = _file(tmp_path, "b", "threshold", THRESHOLD.format(fields='["a"]', value=1))
    bad.write_text(bad.read_text().replace("event.category:authentication", "a:(b"))
    paths = {"missing": str(tmp_path / "missing.toml"), "refused": str(tmp_path / "refused.toml"), "bad_kql": str(bad)}
    result = _translate(*(arg.format(**paths) for arg in args))
    assert (result.returncode, result.stdout) == (code, "")
    assert error in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("keys", "kind", "category", "parameters"),
    [
        (
            THRESHOLD.format(fields='"host.name"', value=5),
            "threshold",
            ("Threshold Rule", "siem.thresholdRule"),
            {"threshold": {"field": ["host.name"], "value": 5, "cardinality": []}},
        ),
        (
            NEW_TERMS.format(fields='["host.name"]', start="now-14d"),
            "new_terms",
            ("New Terms Rule", "siem.newTermsRule"),
            {"new_terms_fields": ["host.name"], "history_window_start": "now-14d"},
        ),
        (
            'new_terms_fields = ["a", "b"]\nhistory_window_start = "now-7d"\n',
            "new_terms",
            ("New Terms Rule", "siem.newTermsRule"),
            {"new_terms_fields": ["a", "b"], "history_window_start": "now-7d"},
        ),
    ],
)
def test_the_alert_carries_the_types_parameters(
    tmp_path: Path, keys: str, kind: str, category: tuple[str, str], parameters: dict[str, Any]
) -> None:
    fields = rule_fields(load_rule(_file(tmp_path, "r1", kind, keys)), now=NOW)
    assert (fields["kibana.alert.rule.category"], fields["kibana.alert.rule.rule_type_id"]) == category
    assert fields["kibana.alert.rule.parameters"].items() >= parameters.items()
    assert "new_terms" not in fields["kibana.alert.rule.parameters"]


def test_the_mapping_has_the_types_fields() -> None:
    alert = alert_properties()["kibana"]["properties"]["alert"]["properties"]
    result = alert["threshold_result"]["properties"]
    assert result["count"]["type"] == "long" and result["from"]["type"] == "date"
    assert result["terms"]["properties"]["value"]["type"] == "keyword"
    assert result["cardinality"]["properties"]["value"]["type"] == "long"
    assert alert["new_terms"]["type"] == "keyword"


def test_a_hit_alert_is_the_alert_of_its_hit_plus_the_types_fields_under_its_own_id(tmp_path: Path) -> None:
    rule = load_rule(_file(tmp_path, "r1", "threshold", THRESHOLD.format(fields='["host.name"]', value=1)))
    maker = HitAlerts(RunAlerts.for_run(rule, now=NOW, execution_uuid="e", space_id="default"))
    hit = {"_index": "logs-*", "_id": "u-1", "_source": {"@timestamp": "2026-05-01T11:59:00.000Z", "host.name": "h"}}
    result = {"terms": [{"field": "host.name", "value": "h"}], "count": 1, "from": "2026-05-01T11:59:00.000Z"}
    item = HitAlert(hit, {"kibana.alert.threshold_result": result}, "the group host.name='h' (1 events)")
    [write] = maker.documents(item, "the-id", NOW)
    document = orjson.loads(write.body)
    assert (write.doc_id, document["kibana.alert.uuid"], document["kibana.alert.threshold_result"]) == (
        "the-id",
        "the-id",
        result,
    )
    assert (write.event_index, write.event_id) == ("logs-*", "u-1")
    assert maker.dead_letter(item, "HTTP 400") == (
        "logs-*",
        "u-1",
        "the alert of the group host.name='h' (1 events): HTTP 400",
    )


def test_cap_warnings() -> None:
    assert max_alerts_warning(False) == MAX_ALERTS_WARNING
    assert max_alerts_warning(True).endswith("Some alerts were not created or suppressed.")


def test_large_value_lists_cannot_apply_to_aggregations() -> None:
    def item(item_id: str) -> ExceptionItem:
        entry = {"field": "user.name", "type": "match", "value": "x"}
        return ExceptionItem.model_validate({"item_id": item_id, "name": f"{item_id} item", "entries": [entry]})

    plan = ExceptionPlan(clause={"match_all": {}}, post_filter=(item("big"),), not_applied=(item("mixed"),))
    aggregations = plan.for_aggregations()
    assert (aggregations.clause, aggregations.post_filter) == ({"match_all": {}}, ())
    assert aggregations.warnings == [
        "The following exceptions won't be applied to rule execution: big item, mixed item"
    ]


@pytest.mark.parametrize(
    ("kind", "keys", "warnings"),
    [
        (
            "threshold",
            THRESHOLD.format(fields='["host.name", "user.name"]', value=5)
            + '[[rule.threshold.cardinality]]\nfield = "source.ip"\nvalue = 2\n',
            [
                'threshold.field: Field "host.name" is mapped as text, which cannot be grouped on; '
                "every run of the rule would fail",
                'threshold.cardinality: Field "source.ip" is not found within the rule\'s specified index patterns',
            ],
        ),
        (
            "new_terms",
            NEW_TERMS.format(fields='["host.name", "user.name"]', start="now-7d"),
            [
                'new_terms_fields: Field "host.name" is mapped as text, which cannot be grouped on; '
                "every run of the rule would fail"
            ],
        ),
    ],
)
def test_fields_that_cannot_be_aggregated_are_warnings_with_the_clusters_types(
    tmp_path: Path, kind: str, keys: str, warnings: list[str]
) -> None:
    types = {"host.name": "text", "user.name": "keyword", "event.category": "keyword", "@timestamp": "date"}
    rule = load_rule(_file(tmp_path, "r1", kind, keys))
    found = check_rules([rule], alerts_max=1000, now=NOW, field_types=lambda index: types)
    assert [(d.is_error, d.message) for d in found] == [(False, warning) for warning in warnings]
