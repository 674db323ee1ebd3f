"""The rendered pods run: the setup hook Job, then the CronJob, as local processes against the real node.

Each pod's container is laid out by tests/chart/pod.py (mounted Secrets and ConfigMaps written at their
mount paths under a temporary folder) and started with the project's ``detection-job``. The release
is rendered from tests/chart/values/inline-rules.yaml (a rule and a shared exception list in values).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch, helpers

from tests.chart import render
from tests.chart.pod import Cluster, LocalPod, prepare

pytestmark = pytest.mark.integration

RULE_ID = "4f0c2d61-chart-test-cred-dump"  # the rule in inline-rules.yaml; it searches chart-events-*
BIN = Path(sys.executable).parent
# The Secrets the release expects to exist (inline-rules.yaml names them and their keys).
EXISTING = Cluster(
    secrets={
        "es-setup": {"setup-key": "setup-role-api-key"},
        "es-runtime": {"runtime-key": "runtime-role-api-key"},
    }
)


def _event(moment: datetime, action: str, os_type: str, user: str) -> dict[str, Any]:
    return {
        "@timestamp": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "event": {"kind": "event", "action": action},
        "host": {"name": "ws-07", "os": {"type": os_type}},
        "user": {"name": user},
        "process": {"name": "procdump64.exe"},
    }


def _start(pod: LocalPod, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv) or pod.argv, env=pod.env, cwd=pod.cwd, capture_output=True, text=True, timeout=300)


def _settings_seen_by(pod: LocalPod) -> list[str]:
    """What the job reads from the pod's environment and mounted files: the API key and the rules folder."""
    code = (
        "from job.config.settings import load_settings; s = load_settings(); "
        "print(s.es_api_key.get_secret_value() if s.es_api_key else None); print(s.rules_dir)"
    )
    result = _start(pod, str(BIN / "python"), "-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_setup_hook_then_the_cronjob_run_and_alert(
    es: Elasticsearch,
    es_url: str,
    index_name: str,
    scratch_index: Callable[[str], str],
    tmp_path: Path,
) -> None:
    alerts, executions = f"{index_name}-alerts", f"{index_name}-executions"
    manifests = render.template(
        ["inline-rules.yaml"],
        {
            "elasticsearch.hosts": [es_url],
            "config.alertsIndex": alerts,
            "config.executionsIndex": executions,
            "config.deadLetterIndex": f"{index_name}-dead-letters",
        },
    )
    events_index = scratch_index("chart-events")
    cluster = Cluster(dict(EXISTING.secrets), dict(EXISTING.config_maps))
    cluster.add_rendered(manifests.docs)
    try:
        # The hook Job first, as helm runs it before the release's other objects.
        hook = manifests.one("Job", "setup")
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
        setup_pod = prepare(hook["spec"]["template"]["spec"], "setup", cluster, tmp_path / "setup-pod", BIN)
        assert _settings_seen_by(setup_pod)[0] == "setup-role-api-key"
        setup = _start(setup_pod)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        assert es.indices.exists_index_template(name=f"{alerts}-template")
        assert es.indices.exists_alias(name=alerts)
        assert es.indices.exists(index=executions)

        now = datetime.now(UTC)
        events = {
            "dumped": _event(now - timedelta(minutes=2), "credential-dump", "windows", "mallory"),
            "backup-service": _event(now - timedelta(minutes=2), "credential-dump", "windows", "svc-backup"),
            "other-action": _event(now - timedelta(minutes=2), "file-create", "windows", "mallory"),
            "linux-host": _event(now - timedelta(minutes=2), "credential-dump", "linux", "mallory"),
        }
        actions = [{"_op_type": "create", "_index": events_index, "_id": k, "_source": v} for k, v in events.items()]
        helpers.bulk(es, actions, refresh=True)

        cronjob = manifests.one("CronJob")
        run_spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        run_pod = prepare(run_spec, "detection-job", cluster, tmp_path / "run-pod", BIN)
        api_key, rules_dir = _settings_seen_by(run_pod)
        assert api_key == "runtime-role-api-key"
        assert rules_dir == str(run_pod.mounts["/etc/detection-job/rules"])
        run = _start(run_pod)
        assert run.returncode == 0, run.stdout + run.stderr

        es.indices.refresh(index=alerts)
        hits = helpers.scan(es, index=alerts, query={"query": {"term": {"kibana.alert.rule.rule_id": RULE_ID}}})
        alerted = sorted(ancestor["id"] for hit in hits for ancestor in hit["_source"]["kibana.alert.ancestors"])
        # Only the Windows credential dump: the backup service is in the shared exception list
        # (exceptions/ of the inline rules), the other two do not match the query.
        assert alerted == ["dumped"]
        es.indices.refresh(index=executions)
        records = es.search(index=executions, query={"term": {"rule.rule_id": RULE_ID}})["hits"]["hits"]
        assert [record["_source"]["execution"]["status"] for record in records] == ["succeeded"]

        # The maintenance CronJob: setup again, with the setup credentials (rollover and retention).
        maintenance = manifests.one("CronJob", "maintenance")
        maintenance_spec = maintenance["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        maintenance_pod = prepare(maintenance_spec, "maintenance", cluster, tmp_path / "maintenance-pod", BIN)
        assert _settings_seen_by(maintenance_pod)[0] == "setup-role-api-key"
        maintained = _start(maintenance_pod)
        assert maintained.returncode == 0, maintained.stdout + maintained.stderr
    finally:
        es.options(ignore_status=404).indices.delete_index_template(name=f"{alerts}-template")
