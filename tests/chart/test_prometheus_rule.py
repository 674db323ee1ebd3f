"""The PrometheusRule's alerts, checked and exercised with a real promtool (``promtool test rules``)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.chart import render

# Two shards pushing to a Pushgateway: the extra labels a push or a scrape adds must not matter.
PUSHED = 'job="detection-job",instance="pushgateway:9091"'


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = render.tool("CHART_PROMTOOL", "promtool")
    return subprocess.run([str(promtool), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def rule_groups() -> dict[str, Any]:
    """The ``spec`` of the rendered PrometheusRule: Prometheus' own rule-file format."""
    rule = render.template(["shards.yaml"]).one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    spec: dict[str, Any] = rule["spec"]
    return spec


@pytest.fixture
def rules_file(rule_groups: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule_groups))
    return path


def test_promtool_accepts_every_rule(rules_file: Path) -> None:
    result = _run("check", "rules", str(rules_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_promtool_refuses_a_broken_expression(rule_groups: dict[str, Any], tmp_path: Path) -> None:
    broken = yaml.safe_load(yaml.safe_dump(rule_groups))
    broken["groups"][0]["rules"][0]["expr"] = "max by (rule_id (detection_rule_last_execution_failed) == 1"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken))
    result = _run("check", "rules", str(path))
    assert result.returncode != 0
    assert "parse error" in result.stdout + result.stderr


def _series(metric: str, rule_id: str, rule_name: str, values: str) -> dict[str, str]:
    return {"series": f'{metric}{{rule_id="{rule_id}",rule_name="{rule_name}",{PUSHED}}}', "values": values}


def _alert(rule_id: str, rule_name: str, summary: str, description: str) -> dict[str, Any]:
    return {
        "exp_labels": {"severity": "warning", "rule_id": rule_id, "rule_name": rule_name},
        "exp_annotations": {"summary": summary, "description": description},
    }


def test_each_alert_fires_for_its_rule_only(rules_file: Path, tmp_path: Path) -> None:
    """Five rules over 40 minutes: healthy, failing, with a gap, at the cap, and stale since time 0."""
    healthy = [
        _series("detection_rule_last_execution_failed", "r-ok", "Healthy", "0x40"),
        _series("detection_rule_last_gap_seconds", "r-ok", "Healthy", "0x40"),
        _series("detection_rule_last_max_alerts_reached", "r-ok", "Healthy", "0x40"),
        # Succeeds every minute: its last success is always now.
        _series("detection_rule_last_success_timestamp_seconds", "r-ok", "Healthy", "0+60x40"),
        _series("detection_rule_interval_seconds", "r-ok", "Healthy", "600x40"),
    ]
    troubled = [
        _series("detection_rule_last_execution_failed", "r-fail", "Failing", "1x40"),
        _series("detection_rule_last_gap_seconds", "r-gap", "Gappy", "3600x40"),
        _series("detection_rule_last_max_alerts_reached", "r-cap", "Capped", "1x40"),
        # Last succeeded at time 0 with a 10-minute interval: stale after 20 minutes.
        _series("detection_rule_last_success_timestamp_seconds", "r-stale", "Stale", "0x40"),
        _series("detection_rule_interval_seconds", "r-stale", "Stale", "600x40"),
    ]
    failed = _alert(
        "r-fail",
        "Failing",
        "Detection rule Failing failed",
        "The last execution of rule r-fail failed; its window is searched again by the next run. "
        "`detection-job status` and the execution log say why.",
    )
    gap = _alert(
        "r-gap",
        "Gappy",
        "Detection rule Gappy skipped 1h 0m 0s of events",
        "The last execution of rule r-gap recorded a gap: events in that time were never searched "
        "(downtime longer than DETECTION_MAX_CATCHUP). Backfill it with `detection-job backfill`.",
    )
    capped = _alert(
        "r-cap",
        "Capped",
        "Detection rule Capped hit its alerts cap",
        "The last execution of rule r-cap wrote as many alerts as it may (max_signals or DETECTION_ALERTS_MAX); "
        "matching events beyond the cap got no alert.",
    )
    stale = _alert(
        "r-stale",
        "Stale",
        "Detection rule Stale has not succeeded for 2 intervals",
        "Rule r-stale last succeeded 30m 0s ago, more than twice its interval.",
    )
    tests = {
        "rule_files": [str(rules_file)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": healthy + troubled,
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": "DetectionRuleExecutionFailed", "exp_alerts": [failed]},
                    {"eval_time": "30m", "alertname": "DetectionRuleGap", "exp_alerts": [gap]},
                    {"eval_time": "30m", "alertname": "DetectionRuleMaxAlertsReached", "exp_alerts": [capped]},
                    {"eval_time": "30m", "alertname": "DetectionRuleNoRecentSuccess", "exp_alerts": [stale]},
                    # Stale from minute 21, but the alert waits its `for: 5m`.
                    {"eval_time": "23m", "alertname": "DetectionRuleNoRecentSuccess", "exp_alerts": []},
                ],
            },
            {
                "interval": "1m",
                "input_series": healthy,
                "alert_rule_test": [
                    {"eval_time": "30m", "alertname": name, "exp_alerts": []}
                    for name in (
                        "DetectionRuleExecutionFailed",
                        "DetectionRuleGap",
                        "DetectionRuleMaxAlertsReached",
                        "DetectionRuleNoRecentSuccess",
                    )
                ],
            },
        ],
    }
    path = tmp_path / "alerts_test.yaml"
    path.write_text(yaml.safe_dump(tests, width=1000))
    result = _run("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
