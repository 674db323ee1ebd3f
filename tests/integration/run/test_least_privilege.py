"""Least privilege: ``run`` and ``schedule`` install nothing, and every request they make is covered by the
runtime role in the README, and every privilege of that role is used; every request of ``preview`` is a read
the README's preview role allows, and every privilege of that role is used.

The local node has no security, so the check is made on the requests themselves: each job process runs
behind its own fault proxy, which records the method and path of every request (and the body of bulk
requests, whose actions decide the privilege). ``PRIVILEGES`` maps each kind of request to the index
privilege Elasticsearch checks for it, with the reason; a request it does not know fails the test.
"""

from __future__ import annotations

import fnmatch
import json
import re
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from job.alerts.ids import alert_id
from job.cli import main as cli_main
from job.client.esclient import may_write
from tests.faultproxy import FaultProxy, refusing_bulk
from tests.integration.run.conftest import ECS_EVENT_MAPPING, JobEnv, cred_event, iso
from tests.integration.run.test_lists_command import import_list, use_lists
from tests.integration.run.test_metrics_endpoints import fetch, free_port, wait_for
from tests.integration.run.test_run_value_lists import list_item
from tests.jobprocess import KillPoint, run_job, started_job

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[3] / "README.md"
NAMES = r"(?P<names>[^_/][^/]*)"  # one or more index names or patterns, comma-separated

# (methods, path, privilege on the named indices, why Elasticsearch asks for it). "pit": the privilege is
# needed on the indices the point in time was opened on; "bulk": on each action's index, by action type;
# "msearch": read on the indices each search's header line names.
PRIVILEGES: list[tuple[frozenset[str], str, str | None, str]] = [
    (
        frozenset({"GET"}),
        rf"^/{NAMES}/_alias$",
        "view_index_metadata",
        "preflight: the indices behind the alerts alias, the execution log and the dead-letter index",
    ),
    (
        frozenset({"GET"}),
        rf"^/{NAMES}/_mapping$",
        "view_index_metadata",
        "preflight: the write indices' mappings (template version, fields)",
    ),
    (
        frozenset({"HEAD"}),
        rf"^/{NAMES}$",
        "view_index_metadata",
        "before dead letters are written: the index exists (a write never creates it with dynamic mappings)",
    ),
    (
        frozenset({"GET", "POST"}),
        rf"^/{NAMES}/_field_caps$",
        "read",
        "the field types of the rule's index patterns (indices:data/read/field_caps)",
    ),
    (frozenset({"POST"}), rf"^/{NAMES}/_pit$", "read", "a point in time on the rule's index patterns"),
    (frozenset({"POST", "GET"}), r"^/_search$", "pit", "a page of a point in time: read on the indices it covers"),
    (frozenset({"DELETE"}), r"^/_pit$", None, "closing a point in time takes no privilege"),
    (
        frozenset({"POST", "GET"}),
        rf"^/{NAMES}/_search$",
        "read",
        "the execution log (history, due rules), alerts and dead letters (dedupe), value lists",
    ),
    (frozenset({"POST", "GET"}), rf"^/{NAMES}/_count$", "read", "how many items a value list holds"),
    (frozenset({"PUT", "POST"}), rf"^/{NAMES}/_create/[^/]+$", "create_doc", "the running record, written ahead"),
    (
        frozenset({"PUT", "POST"}),
        rf"^/{NAMES}/_doc/[^/]+$",
        "index",
        "the final record overwrites the running one by id, in the index that holds it",
    ),
    (frozenset({"POST"}), rf"^/{NAMES}/_update/[^/]+$", "index", "an abandoned running record marked failed"),
    (frozenset({"GET"}), rf"^/{NAMES}/_doc/[^/]+$", "read", "a suppressed group's alert, read before its update"),
    (
        frozenset({"PUT", "POST"}),
        rf"^/({NAMES}/)?_bulk$",
        "bulk",
        "alerts and dead letters (create actions: create_doc); suppressed groups' alerts updated (index)",
    ),
    (
        frozenset({"POST", "GET"}),
        r"^/_msearch$",
        "msearch",
        "the first page of many rules' windows at once: read on the indices each search names",
    ),
    (
        frozenset({"POST"}),
        rf"^/{NAMES}/_refresh$",
        "maintenance",
        "the pass's alerts, dead letters and records made searchable for the next pass",
    ),
]
BULK_ACTIONS = {"create": "create_doc", "index": "index", "update": "index", "delete": "delete"}
# What a privilege also grants, for the privileges the roles use.
IMPLIES = {"index": {"create_doc"}}
SCENARIO_NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Need:
    privilege: str
    index: str
    request: str


def runtime_role(
    job_env: JobEnv, lists: str, items: str, name: str = "detection-job-runtime"
) -> list[tuple[list[str], set[str]]]:
    """The README's runtime role (or the role ``name``), its default names replaced by this test's."""
    block = re.search(r"<!-- elasticsearch-roles:begin -->\n```json\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    role = json.loads(block.group(1))[name]
    assert role["cluster"] == [], f"{name}: run, schedule and preview need no cluster privilege"
    ours = {
        "detection-alerts-default": job_env.alerts,
        "detection-executions-default": job_env.executions,
        "detection-deadletter-default": job_env.dead_letters,
        "detection-lists-default": lists,
        "detection-list-items-default": items,
        "endgame-": f"{job_env.prefix}-events-",
    }

    def rename(name: str) -> str:
        for default, mine in ours.items():
            if name.startswith(default):
                return mine + name[len(default) :]
        raise AssertionError(f"unexpected name {name} in the README's runtime role")

    return [([rename(name) for name in entry["names"]], set(entry["privileges"])) for entry in role["indices"]]


def _names(match: re.Match[str]) -> list[str]:
    return [name for name in unquote(match.group("names") or "").split(",") if name]


def needs(requests: list[tuple[str, str]], kept_bodies: Iterator[tuple[str, bytes]]) -> list[Need]:
    """The privileges the recorded requests need, on which names (``kept_bodies``: the bodies of the bulk and
    msearch requests, in the order they were made)."""
    bodies = dict(enumerate(kept_bodies))
    body_seen = 0
    pit_indices: list[str] = []
    found: list[Need] = []
    for method, full_path in requests:
        path = urlsplit(full_path).path
        request = f"{method} {path}"
        rows = [row for row in PRIVILEGES if method in row[0] and re.match(row[1], path)]
        assert len(rows) == 1, f"{request}: {len(rows)} rows of PRIVILEGES match; add one, with its reason"
        _, pattern, privilege, _ = rows[0]
        names = _names(re.match(pattern, path)) if "(?P<names>" in pattern else []
        if privilege == "read" and path.endswith("/_pit"):
            pit_indices = names
        if privilege is None:
            continue
        if privilege == "pit":
            found += [Need("read", name, request) for name in pit_indices]
        elif privilege in ("bulk", "msearch"):
            body_path, body = bodies[body_seen]
            body_seen += 1
            assert body_path == path
            lines = [json.loads(line) for line in body.splitlines() if line.strip()]
            if privilege == "msearch":
                for header in lines[::2]:
                    index = header.get("index", names)
                    searched = index.split(",") if isinstance(index, str) else list(index)
                    found += [Need("read", name, f"{request} (search)") for name in searched]
                continue
            for action in lines[::2]:
                kind, meta = next(iter(action.items()))
                for name in [meta["_index"]] if "_index" in meta else names:
                    found.append(Need(BULK_ACTIONS[kind], name, f"{request} ({kind})"))
        else:
            found += [Need(privilege, name, request) for name in names]
    return found


def granted(role: list[tuple[list[str], set[str]]], need: Need) -> list[tuple[int, str]]:
    """The (entry, privilege) pairs of the role that grant ``need``."""
    return [
        (position, privilege)
        for position, (patterns, privileges) in enumerate(role)
        if any(fnmatch.fnmatchcase(need.index, pattern) for pattern in patterns)
        for privilege in privileges
        if need.privilege == privilege or need.privilege in IMPLIES.get(privilege, set())
    ]


def assert_exactly_covered(role: list[tuple[list[str], set[str]]], found: list[Need], name: str) -> None:
    """Every need is granted by the role, and every privilege of the role grants a need."""
    uncovered = sorted(
        {f"{need.request}: {need.privilege} on {need.index}" for need in found if not granted(role, need)}
    )
    assert uncovered == [], f"requests the README's {name} role does not allow"
    used = {pair for need in found for pair in granted(role, need)}
    unused = sorted(
        f"{', '.join(patterns)}: {privilege}"
        for position, (patterns, privileges) in enumerate(role)
        for privilege in privileges
        if (position, privilege) not in used
    )
    assert unused == [], f"privileges of the README's {name} role that no request needs"


class Recorder:
    """Runs the job as processes, each behind its own proxy, and keeps every request they made."""

    def __init__(self, es_url: str) -> None:
        self.es_url = es_url
        self.proxies: list[FaultProxy] = []

    def arm(self, extra: Callable[[FaultProxy], None] | None = None) -> Callable[[FaultProxy], None]:
        def setup(proxy: FaultProxy) -> None:
            proxy.keep_bodies(r"_bulk|_msearch")
            self.proxies.append(proxy)
            if extra is not None:
                extra(proxy)

        return setup

    def requests(self) -> list[tuple[str, str]]:
        return [request for proxy in self.proxies for request in proxy.requests()]

    def kept_bodies(self) -> Iterator[tuple[str, bytes]]:
        for proxy in self.proxies:
            for _, path, body in proxy.bodies():
                yield urlsplit(path).path, body


@pytest.mark.parametrize(
    "command",
    [
        ["run"],
        ["schedule"],
        ["backfill", "--rule", "r", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T01:00:00Z"],
    ],
)
def test_runs_install_nothing_and_ask_for_setup_first(job_env: JobEnv, es_url: str, command: list[str]) -> None:
    job_env.write_rule(rule_id="r")
    job_env.set(auto_setup="false")
    result = run_job(es_url, command, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().endswith('run "detection-job setup" first'), result.stderr
    assert "the alerts alias" in result.stderr and "does not exist" in result.stderr
    for index in (job_env.alerts, job_env.executions, job_env.dead_letters):
        assert not job_env.es.indices.exists(index=index), f"{index} was created"
    assert cli_main(["setup"]) == 0
    assert run_job(es_url, ["run"], timeout=120).returncode == 0


def test_every_request_of_run_and_schedule_is_covered_by_the_runtime_role(
    job_env: JobEnv, es_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lists, items = use_lists(job_env)
    assert import_list(job_env, "tools.txt", "keyword", ["nmap.exe"]) == 0
    assert import_list(job_env, "ports.txt", "long", ["22", "445"]) == 0  # a long list: applied to each page
    job_env.set(auto_setup="false", page_size="5")
    assert cli_main(["setup"]) == 0
    capsys.readouterr()
    plain = job_env.write_rule(rule_id="plain")
    suppressed = job_env.write_rule(
        rule_id="suppressed",
        extra='\n[rule.alert_suppression]\ngroup_by = ["host.name"]\nduration = {value = 1, unit = "h"}\n',
    )
    listed = job_env.write_rule(
        rule_id="listed",
        extra=list_item("tools", ("process.name", "tools.txt", "keyword", "included"))
        + list_item("ports", ("destination.port", "ports.txt", "long", "included")),
    )
    now = SCENARIO_NOW
    events = [
        cred_event(now - timedelta(minutes=3, seconds=i), _id=f"e{i}", destination={"port": 3389}) for i in range(12)
    ]
    job_env.index_events(events, mapping=ECS_EVENT_MAPPING)
    poison = {alert_id(job_env.events_index(), "e3", plain, "default")}
    record = Recorder(es_url)
    refusing = record.arm(lambda proxy: proxy.always(r"^/_bulk", refusing_bulk(es_url, poison)))

    # Alerts created, a dead letter, value lists (as a clause and per page).
    first = run_job(es_url, ["run", "--now", iso(now)], setup=refusing)
    assert first.returncode == 1, first.stderr  # a dead letter
    # A run killed after its running record (at its first bulk of new events): the next run marks it failed.
    job_env.index_events([cred_event(now - timedelta(minutes=2, seconds=i), _id=f"k{i}") for i in range(3)])
    killed = run_job(
        es_url, ["run", "--all", "--now", iso(now)], kill=KillPoint("bulk", r"^/_bulk", nth=1), setup=record.arm()
    )
    assert killed.killed
    job_env.index_events([cred_event(now + timedelta(minutes=5), _id="late", source={"ip": "10.0.0.1"})])
    # Duplicates, the interrupted record marked; rollover and retention due, which a run leaves to setup.
    job_env.set(alerts_rollover="max_docs=1", alerts_retention="1d", executions_rollover="max_docs=1")
    second = run_job(es_url, ["run", "--all", "--now", iso(now + timedelta(minutes=10))], setup=record.arm())
    assert second.returncode == 0, second.stderr
    # A backfill window, and schedule with its readiness endpoint.
    backfill = [
        "backfill",
        "--rule",
        plain,
        "--from",
        iso(now - timedelta(minutes=20)),
        "--to",
        iso(now - timedelta(minutes=10)),
    ]
    assert run_job(es_url, backfill, setup=record.arm()).returncode == 0
    port = free_port()
    job_env.set(http_port=str(port), http_host="127.0.0.1", schedule_interval="1h")
    with started_job(es_url, ["schedule"], setup=record.arm()) as scheduler:
        wait_for(lambda: fetch(port, "/readyz")[0] == 200, "/readyz")
        scheduler.wait_for("rule execution")
        scheduler.wait_for("rule execution")
        scheduler.signal(signal.SIGTERM)
        assert scheduler.finish().returncode == 143

    requests = record.requests()
    paths = [path for _, path in requests]
    assert any("/_update/" in path for path in paths), "no interrupted record was marked"
    assert any(path.startswith(f"/{job_env.dead_letters}/_bulk") for path in paths), "no dead letter"
    assert any(path.startswith(f"/{items}/_search") for path in paths), f"no list was applied to a page: {paths}"
    assert not any("_rollover" in path for path in paths), "a run rolled an index over: that is setup's"
    assert not any(method == "DELETE" and not path.startswith("/_pit") for method, path in requests)
    found = needs(requests, record.kept_bodies())
    assert_exactly_covered(runtime_role(job_env, lists, items), found, "runtime")
    assert listed and job_env.alert_docs(listed)
    updates = [line for _, body in record.kept_bodies() for line in body.splitlines() if line.startswith(b'{"update"')]
    assert updates, "no suppressed alert was updated"
    assert len(job_env.alert_docs(suppressed)) == 1, "one alert for the suppressed group"


def test_preview_only_reads_and_the_preview_role_covers_every_request(
    job_env: JobEnv, es_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Preview over what a run has written already (duplicates, suppressed groups folding into existing alerts,
    a dead letter, value lists as a clause and per page): read privileges suffice, and nothing changes."""
    lists, items = use_lists(job_env)
    assert import_list(job_env, "tools.txt", "keyword", ["nmap.exe"]) == 0
    assert import_list(job_env, "ports.txt", "long", ["22", "445"]) == 0
    job_env.set(auto_setup="false", page_size="5")
    assert cli_main(["setup"]) == 0
    plain = job_env.write_rule(rule_id="plain")
    job_env.write_rule(
        rule_id="suppressed",
        extra='\n[rule.alert_suppression]\ngroup_by = ["host.name"]\nduration = {value = 1, unit = "h"}\n',
    )
    job_env.write_rule(
        rule_id="listed",
        extra=list_item("tools", ("process.name", "tools.txt", "keyword", "included"))
        + list_item("ports", ("destination.port", "ports.txt", "long", "included")),
    )
    now = datetime.now(UTC) - timedelta(minutes=30)
    events = [
        cred_event(now - timedelta(minutes=3, seconds=i), _id=f"e{i}", destination={"port": 3389}) for i in range(12)
    ]
    job_env.index_events(events, mapping=ECS_EVENT_MAPPING)
    poison = {alert_id(job_env.events_index(), "e3", plain, "default")}
    refusing = lambda proxy: proxy.always(r"^/_bulk", refusing_bulk(es_url, poison))  # noqa: E731
    assert run_job(es_url, ["run", "--all", "--now", iso(now)], setup=refusing).returncode == 1  # a dead letter
    job_env.index_events([cred_event(now + timedelta(minutes=1, seconds=i), _id=f"later{i}") for i in range(3)])

    indices = [job_env.alerts, job_env.executions, job_env.dead_letters]
    job_env.es.indices.refresh(index=indices)
    before = {
        hit["_id"]: hit["_seq_no"]
        for hit in job_env.es.search(index=indices, size=100, seq_no_primary_term=True)["hits"]["hits"]
    }
    record = Recorder(es_url)
    span = ["--from", iso(now - timedelta(minutes=20)), "--to", iso(now + timedelta(minutes=10))]
    table = run_job(es_url, ["preview", "plain", "suppressed", "listed", *span], setup=record.arm())
    assert table.returncode == 0, table.stderr
    assert "1 existing alerts would take in later events" in table.stdout  # the suppressed group
    assert "  dead letters  1 events skipped: dead-lettered already" in table.stdout
    assert "  duplicates    11 would-be alerts exist already" in table.stdout
    as_json = run_job(es_url, ["preview", "plain", *span, "--json"], setup=record.arm())
    assert as_json.returncode == 0, as_json.stderr
    assert len(as_json.stdout.splitlines()) == 3  # the later events

    job_env.es.indices.refresh(index=indices)
    after = {
        hit["_id"]: hit["_seq_no"]
        for hit in job_env.es.search(index=indices, size=100, seq_no_primary_term=True)["hits"]["hits"]
    }
    assert after == before, "preview changed a document"
    requests = record.requests()
    assert not [request for request in requests if may_write(*request)], "preview sent a request that may write"
    found = needs(requests, record.kept_bodies())
    assert {need.privilege for need in found} == {"read"}
    assert any(need.index == items for need in found), "no value list was read per page"
    assert_exactly_covered(runtime_role(job_env, lists, items, "detection-job-preview"), found, "preview")
