"""``detection-job test``: the shipped rules pass their tests, and a test run reports failures with a diff, bad
input one line each at its FILE:LINE, writes a JUnit report, and leaves no index behind (also when stopped)."""

from __future__ import annotations

import os
import shutil
import signal
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from job.cli import main as cli_main
from job.config.settings import SHIPPED_RULES_DIR
from tests.faultproxy import FaultProxy
from tests.jobprocess import started_job

SEED = "credential_access_endgame_cred_dumping_detected.toml"
EVENT = (
    '{"@timestamp": "2026-01-05T10:00:00.000Z", "event": {"kind": "alert", "module": "endgame", '
    '"action": "cred_theft_event"}, "endgame": {"metadata": {"type": "detection"}}, "host": {"name": "%s"}}'
)
GOOD = f"""
[[test]]
name = "good"
events = '''
{EVENT % "ws-01"}
'''
alerts = 1
"""
REFUSED = '{"@timestamp": "2026-01-05T10:00:00Z", "source": {"ip": "none"}}'
# name -> (a test file's TOML after its rule line, what the line of its bad input says, FILE:LINE included)
BAD: dict[str, tuple[str, str]] = {
    "not JSON": (
        "[[test]]\nname = 'x'\nevents = '''\n{\"@timestamp\": 1}\n{not json\n'''\nalerts = 0\n",
        "bad0.toml:6: event: not JSON",
    ),
    "impossible field": (
        f"[[test]]\nname = 'x'\nevents = '''\n{EVENT % 'a'}\n'''\nalerts = 1\n"
        "[[test.alert]]\n'kibana.alert.sevrity' = 'high'\n",
        "bad1.toml:9: kibana.alert.sevrity: no alert of this rule can have this field",
    ),
    "refused by the mapping": (
        f"[[test]]\nname = 'x'\nevents = '''\n{REFUSED}\n'''\nalerts = 0\n",
        "bad2.toml:5: Elasticsearch refused this event: HTTP 400",
    ),
    "no expectation": ("[[test]]\nname = 'x'\nevents = '{\"@timestamp\": 1}'\n", "bad3.toml:2: expects nothing"),
    "no events file": (
        "[[test]]\nname = 'x'\nevents_file = 'nowhere.ndjson'\nalerts = 0\n",
        "nowhere.ndjson: cannot read",
    ),
}


@pytest.fixture
def rules(tmp_path: Path, es_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A rules folder with the seed rule and an empty tests/ folder; the job pointed at the test cluster."""
    for key in list(os.environ):
        if key.startswith("DETECTION_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DETECTION_ES_HOSTS", es_url)
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "rules"
    (folder / "tests").mkdir(parents=True)
    shutil.copy(SHIPPED_RULES_DIR / SEED, folder / SEED)
    yield folder


def _leftovers(es: Elasticsearch) -> list[str]:
    indices = list(es.indices.get(index="detection-test-*", expand_wildcards="all", ignore_unavailable=True))
    templates = es.options(ignore_status=404).indices.get_index_template(name="detection-test-*")
    return indices + [item["name"] for item in templates.body.get("index_templates", [])]


def test_the_shipped_rules_pass_their_tests(es: Elasticsearch, rules: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["test", str(SHIPPED_RULES_DIR)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-1].strip("= ").startswith("30 passed in ")
    assert _leftovers(es) == []


def test_bad_input_is_one_line_each_and_the_other_tests_still_run(
    es: Elasticsearch, rules: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = f'rule = "../{SEED}"\n'
    (rules / "tests" / "good.toml").write_text(header + GOOD)
    for number, (body, _) in enumerate(BAD.values()):
        (rules / "tests" / f"bad{number}.toml").write_text(header + body)
    (rules / "tests" / "no_rule.toml").write_text(GOOD)
    (rules / "tests" / "broken_rule.toml").write_text('rule = "../broken.toml"\n' + GOOD)
    (rules / "broken.toml").write_text("[rule]\nname = 3\n")
    assert cli_main(["test", str(rules)]) == 2
    out, err = capsys.readouterr()
    assert "rules/tests/good.toml::good PASSED" in out
    lines = err.splitlines()
    for _, said in BAD.values():
        assert len([line for line in lines if said in line]) == 1, said
    assert "rules/tests/no_rule.toml:1: names no rule" in err
    assert any(line.startswith("rules/broken.toml:") for line in lines)  # the rule file's own FILE:LINE
    assert out.splitlines()[-1].strip("= ").startswith(f"1 passed, {len(BAD) + 2} errors in")
    assert _leftovers(es) == []


def test_a_failure_says_what_differs_and_the_junit_report_counts_it(
    es: Elasticsearch, rules: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    wrong = f"""rule = "571afc56-5ed9-465d-a2a9-045f099f6e7e"
{GOOD}
[[test]]
name = "wrong"
events = '''
{EVENT % "ws-01"}
{EVENT % "ws-02"}
'''
alerts = 1

[[test.alert]]
"kibana.alert.severity" = "low"
"host.name" = "ws-02"
"""
    (rules / "tests" / "wrong.toml").write_text(wrong)
    report = tmp_path / "junit.xml"
    assert cli_main(["test", str(rules / "tests" / "wrong.toml"), "--junit", str(report)]) == 1
    out = capsys.readouterr().out
    assert "rules/tests/wrong.toml::good PASSED" in out
    assert "rules/tests/wrong.toml::wrong FAILED" in out
    failure = out[out.index("FAILURES") :]
    assert "expected 1 alert, got 2" in failure
    table = wrong.splitlines().index("[[test.alert]]") + 1
    assert f"[[test.alert]] 1 (line {table}) matches no alert; the closest differs so:" in failure
    assert f'    kibana.alert.severity (line {table + 1}): expected "low", got "high"' in failure
    suite = ET.parse(report).getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    [failed] = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    second = [number for number, text in enumerate(wrong.splitlines(), start=1) if text == "[[test]]"][1]
    assert failed.get("name") == "wrong" and failed.get("line") == str(second)
    assert _leftovers(es) == []


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_deletes_what_it_created(
    es: Elasticsearch, es_url: str, rules: Path, signum: int, code: int
) -> None:
    header = f'rule = "../{SEED}"\n'
    for number in range(3):
        (rules / "tests" / f"t{number}.toml").write_text(header + GOOD)
    job: list[object] = []

    def stop_at_the_second_load(proxy: FaultProxy) -> None:
        # The second test's events loaded (the only bulk requests that ask for a refresh).
        proxy.on_request(r"^/_bulk\?.*refresh=true", after=1, action=lambda: job[0].signal(signum), answer=True)  # type: ignore[attr-defined]

    with started_job(es_url, ["test", str(rules)], env=dict(os.environ), setup=stop_at_the_second_load) as running:
        job.append(running)
        result = running.finish()
    assert result.returncode == code, result.stderr
    assert "PASSED" in result.stdout and "3 passed" not in result.stdout  # stopped midway
    assert _leftovers(es) == []
