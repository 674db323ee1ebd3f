"""The Helm chart, checked with the real tools: helm lint/template, Kubernetes 1.30 schemas, restricted PSS."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.chart import render
from tests.chart.pod import read_image
from tests.chart.pss import restricted_violations
from tests.chart.render import CHART, VALUE_SETS, VALUES, Manifests

# Kinds without a schema in kubernetes-validate (Prometheus Operator CRDs), and the test that checks each.
CRD_KINDS = {
    "monitoring.coreos.com/v1/ServiceMonitor": "test_deployment_mode_serves_probes_and_metrics",
    "monitoring.coreos.com/v1/PrometheusRule": "tests/chart/test_prometheus_rule.py (promtool)",
}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def rendered(request: pytest.FixtureRequest) -> tuple[str, Manifests]:
    name: str = request.param
    return name, render.template(VALUE_SETS[name])


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_helm_lint_passes(name: str) -> None:
    result = render.helm("lint", "--strict", str(CHART), *render.values_args(VALUE_SETS[name]))
    assert "0 chart(s) failed" in result.stdout


def test_every_manifest_is_valid_for_kubernetes_1_30(rendered: tuple[str, Manifests]) -> None:
    name, manifests = rendered
    assert manifests.docs, f"{name}: nothing rendered"
    for doc in manifests.docs:
        kind = f"{doc['apiVersion']}/{doc['kind']}"
        if kind in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, render.KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{name}: {kind} {doc['metadata']['name']}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            pytest.fail(f"{name}: no Kubernetes 1.30 schema for {kind}, and no other check of it")


def test_the_validator_refuses_a_broken_manifest() -> None:
    """The schema check above can fail: a misspelt field and a wrong type are refused."""
    cronjob = render.template().one("CronJob")
    for change in ({"concurrencyPolicy": "Forbid", "concurencyPolicy": "Forbid"}, {"suspend": "no"}):
        broken = copy.deepcopy(cronjob)
        broken["spec"].update(change)
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, render.KUBE_VERSION, strict=True)


def test_every_pod_meets_the_restricted_pod_security_standard(rendered: tuple[str, Manifests]) -> None:
    name, manifests = rendered
    pods = list(manifests.pod_specs())
    assert pods, f"{name}: no pod rendered"
    user = read_image().user.split(":")[0]
    for where, spec in pods:
        assert restricted_violations(spec) == [], f"{name}: {where}"
        # Beyond the standard: the image's numeric user, a read-only root with a writable /tmp,
        # no Kubernetes API token (the job never calls the API).
        assert spec["automountServiceAccountToken"] is False, where
        assert str(spec["securityContext"]["runAsUser"]) == user, where
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert str(context["runAsUser"]) == user, where
            mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
            volumes = {volume["name"]: volume for volume in spec["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp is not a writable emptyDir"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"hostNetwork": True}, "hostNetwork: true"),
        ({"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}, "volume h: hostPath"),
        ({"securityContext": {"runAsNonRoot": False}}, "runAsNonRoot is not true"),
        ({"securityContext": {"seccompProfile": {"type": "Unconfined"}}}, "pod: seccompProfile Unconfined"),
        ({"containers": [{"name": "c", "securityContext": {"allowPrivilegeEscalation": True}}]}, "allowPrivilege"),
        ({"containers": [{"name": "c", "securityContext": {"privileged": True}}]}, "container c: privileged"),
        ({"containers": [{"name": "c", "securityContext": {"capabilities": {"drop": ["NET_RAW"]}}}]}, "lacks ALL"),
        ({"containers": [{"name": "c", "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]}, "SYS_ADMIN"),
        ({"containers": [{"name": "c", "ports": [{"containerPort": 80, "hostPort": 80}]}]}, "hostPort"),
    ],
)
def test_the_restricted_check_refuses_what_the_standard_refuses(change: dict[str, Any], expected: str) -> None:
    good: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            {"name": "c", "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    assert restricted_violations(good) == []
    bad = copy.deepcopy(good)
    for key, value in change.items():
        if key == "containers":
            bad["containers"][0]["securityContext"].update(value[0].get("securityContext", {}))
            bad["containers"][0].update({k: v for k, v in value[0].items() if k != "securityContext"})
        elif key == "securityContext":
            bad["securityContext"].update(value)
        else:
            bad[key] = value
    assert any(expected in problem for problem in restricted_violations(bad)), restricted_violations(bad)


def _labels(doc: dict[str, Any]) -> list[dict[str, str]]:
    found = [doc["metadata"]["labels"]]
    spec = doc.get("spec", {})
    if doc["kind"] == "CronJob":
        found += [
            spec["jobTemplate"]["metadata"]["labels"],
            spec["jobTemplate"]["spec"]["template"]["metadata"]["labels"],
        ]
    elif doc["kind"] in {"Job", "Deployment"}:
        found.append(spec["template"]["metadata"]["labels"])
    return found


def test_names_labels_and_references_are_what_kubernetes_accepts(rendered: tuple[str, Manifests]) -> None:
    name, manifests = rendered
    for doc in manifests.docs:
        where = f"{name}: {doc['kind']} {doc['metadata']['name']}"
        assert DNS_SUBDOMAIN.match(doc["metadata"]["name"]), where
        for labels in _labels(doc):
            assert labels["app.kubernetes.io/name"] == "detection-job", where
            assert labels["app.kubernetes.io/instance"] == render.RELEASE, where
            assert labels["app.kubernetes.io/managed-by"] == "Helm", where
            assert (
                labels["helm.sh/chart"]
                == "detection-job-" + yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
            )
            assert all(len(value) <= 63 and LABEL_VALUE.match(value) for value in labels.values()), where
        if doc["kind"] == "ConfigMap":
            assert all(CONFIGMAP_KEY.match(key) and not key.startswith("..") for key in doc["data"]), where
    for where, spec in manifests.pod_specs():
        volumes = {volume["name"] for volume in spec["volumes"]}
        assert len(volumes) == len(spec["volumes"]), f"{where}: duplicate volume names"
        for container in spec["containers"]:
            names = [entry["name"] for entry in container["env"]]
            assert len(names) == len(set(names)), f"{where}: duplicate env {names}"
            assert {mount["name"] for mount in container["volumeMounts"]} <= volumes, where


def test_a_long_release_name_is_cut_to_the_cronjob_limit() -> None:
    release = "r" * 53  # the longest release name helm accepts
    manifests = render.template(release=release)
    cronjob = manifests.one("CronJob")
    assert len(cronjob["metadata"]["name"]) <= 52
    assert len(manifests.one("Job", "setup")["metadata"]["name"]) <= 52
    assert cronjob["metadata"]["name"].startswith("rrrr")
    assert not cronjob["metadata"]["name"].endswith("-")


def test_the_default_is_a_restricted_cronjob_every_ten_minutes() -> None:
    manifests = render.template()
    kinds = sorted(
        f"{doc['kind']}/{doc['metadata']['labels'].get('app.kubernetes.io/component', '-')}" for doc in manifests.docs
    )
    assert kinds == ["CronJob/-", "CronJob/maintenance", "Job/setup", "ServiceAccount/-", "ServiceAccount/setup"]
    spec = manifests.one("CronJob")["spec"]
    job = spec["jobTemplate"]["spec"]
    assert spec["schedule"] == "*/10 * * * *"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["suspend"] is False
    assert spec["startingDeadlineSeconds"] > 0
    assert 0 < job["activeDeadlineSeconds"] < 600, "a stuck run must end before the next one is due"
    assert job["backoffLimit"] == 0
    assert job["ttlSecondsAfterFinished"] > 0
    assert "completionMode" not in job
    [container] = job["template"]["spec"]["containers"]
    assert container["args"] == ["run"]
    env = {entry["name"]: entry.get("value") for entry in container["env"]}
    assert "DETECTION_AUTO_SETUP" not in env
    assert "DETECTION_RULES_DIR" not in env, "by default the rules shipped in the image run"
    assert env["DETECTION_SECRETS_DIR"] == "/var/run/secrets/detection-job"
    assert env["DETECTION_ES_VERIFY_CERTS"] == "true"


def test_plain_helm_template_renders_a_restricted_cronjob() -> None:
    """``helm template helm/detection-job``, no flag: what a user types first."""
    output = render.helm("template", str(CHART)).stdout
    docs = [doc for doc in yaml.safe_load_all(output) if doc]
    cronjobs = [doc for doc in docs if doc["kind"] == "CronJob"]  # the runs and the maintenance
    assert len(cronjobs) == 2
    for cronjob in cronjobs:
        assert restricted_violations(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]) == []


def test_the_shortest_shipped_rule_interval_is_the_default_schedule() -> None:
    """The default schedule runs as often as the most frequent shipped rule needs."""
    import tomllib

    minutes = set()
    for path in (render.ROOT / "rule_defs").glob("*.toml"):
        interval = tomllib.loads(path.read_text())["rule"].get("interval", "5m")
        assert interval.endswith("m"), f"{path.name}: interval {interval} is not in minutes; update this test"
        minutes.add(int(interval[:-1]))
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["cronjob"]["schedule"] == f"*/{min(minutes)} * * * *"


def test_the_setup_hook_runs_setup_with_its_own_credentials() -> None:
    manifests = render.template(["inline-rules.yaml"])
    job = manifests.one("Job", "setup")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    account = manifests.one("ServiceAccount", "setup")
    assert int(account["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(annotations["helm.sh/hook-weight"])
    spec = job["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    [container] = spec["containers"]
    assert container["args"] == ["setup"]
    setup_secret = {v["name"]: v for v in spec["volumes"]}["credentials"]["secret"]
    assert setup_secret["secretName"] == "es-setup"
    assert setup_secret["items"] == [{"key": "setup-key", "path": "detection_es_api_key"}]
    run_spec = manifests.one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    run_secret = {v["name"]: v for v in run_spec["volumes"]}["credentials"]["secret"]
    assert run_secret["secretName"] == "es-runtime"
    assert run_secret["items"] == [{"key": "runtime-key", "path": "detection_es_api_key"}]
    for pod in (spec, run_spec):
        [c] = pod["containers"]
        assert "DETECTION_AUTO_SETUP" not in {entry["name"] for entry in c["env"]}
    assert "rules" not in {v["name"] for v in spec["volumes"]}, "setup needs no rules"


def test_the_maintenance_cronjob_runs_setup_daily_with_the_setup_credentials() -> None:
    """Rollover and retention need privileges the runtime role lacks: a CronJob of their own runs them."""
    manifests = render.template(["inline-rules.yaml"])
    cronjob = manifests.one("CronJob", "maintenance")
    assert cronjob["spec"]["schedule"] == "17 3 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [container] = spec["containers"]
    assert container["args"] == ["setup"]
    secret = {v["name"]: v for v in spec["volumes"]}["credentials"]["secret"]
    assert secret["secretName"] == "es-setup"
    assert "DETECTION_AUTO_SETUP" not in {entry["name"] for entry in container["env"]}
    assert render.template(set_json={"maintenance": {"enabled": False}}).of_kind("CronJob") == [
        render.template().one("CronJob")
    ]


def test_setup_can_be_left_to_the_operator() -> None:
    manifests = render.template(set_json={"setup": {"enabled": False}})
    assert manifests.of_kind("Job") == []


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container["env"]}


def test_shards_render_an_indexed_job() -> None:
    spec = render.template(["shards.yaml"]).one("CronJob")["spec"]
    job = spec["jobTemplate"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 3, 3)
    [container] = job["template"]["spec"]["containers"]
    env = _env(container)
    assert env["DETECTION_SHARDS"] == "3"
    assert env["DETECTION_PUSHGATEWAY_URL"] == "http://pushgateway.monitoring:9091"
    assert (spec["timeZone"], spec["suspend"], spec["schedule"]) == ("Europe/Paris", True, "*/5 * * * *")


@pytest.mark.parametrize(
    ("schedule", "deadline", "refused"),
    [("*/5 * * * *", 300, True), ("*/5 * * * *", 299, False), ("*/15 * * * *", 540, False), ("0 * * * *", 4000, False)],
)
def test_a_run_must_end_before_the_next_is_due(schedule: str, deadline: int, refused: bool) -> None:
    overrides = {"cronjob": {"schedule": schedule, "activeDeadlineSeconds": deadline}}
    result = render.helm("template", "x", str(CHART), *render.values_args([], overrides), check=False)
    assert (result.returncode != 0) == refused, result.stderr
    if refused:
        assert "must be below the schedule's interval" in result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"shards": 2}, "shards > 1 needs mode: cronjob"),
        ({"terminationGracePeriodSeconds": 20}, "terminationGracePeriodSeconds must be above deployment.shutdownGrace"),
    ],
)
def test_deployment_mode_refuses(overrides: dict[str, Any], message: str) -> None:
    result = render.helm("template", "x", str(CHART), *render.values_args(["deployment.yaml"], overrides), check=False)
    assert result.returncode != 0
    assert message in result.stderr


def test_deployment_mode_serves_probes_and_metrics() -> None:
    manifests = render.template(["deployment.yaml"])
    assert [doc["metadata"]["labels"]["app.kubernetes.io/component"] for doc in manifests.of_kind("CronJob")] == [
        "maintenance"
    ]
    deployment = manifests.one("Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == ["schedule"]
    [port] = container["ports"]
    assert (port["name"], port["containerPort"]) == ("http", 9102)
    env = _env(container)
    assert env["DETECTION_HTTP_PORT"] == "9102"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert env["DETECTION_SHUTDOWN_GRACE"] == "20s"
    assert pod["terminationGracePeriodSeconds"] > 20
    service = manifests.one("Service")
    assert service["spec"]["selector"].items() <= spec["template"]["metadata"]["labels"].items()
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    [service_port] = service["spec"]["ports"]
    assert (service_port["name"], service_port["targetPort"]) == ("http", "http")
    monitor = manifests.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    [endpoint] = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    # Everything else the values set asks for.
    assert env["DETECTION_ES_HOSTS"] == "https://es-0.example.internal:9200,https://es-1.example.internal:9200"
    assert env["DETECTION_SPACE_ID"] == {"configMapKeyRef": {"name": "detection-settings", "key": "space"}}
    assert env["DETECTION_MAX_CATCHUP"] == "12h"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "dedicated"
    assert "nodeAffinity" in pod["affinity"]
    [account] = [
        sa for sa in manifests.of_kind("ServiceAccount") if sa["metadata"]["name"] == pod["serviceAccountName"]
    ]
    assert account["metadata"]["annotations"] == {"example.com/role": "detection"}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["credentials"]["secret"]["items"] == [
        {"key": "username", "path": "detection_es_username"},
        {"key": "password", "path": "detection_es_password"},
    ]
    assert volumes["ca"]["configMap"] == {
        "name": "corporate-ca",
        "defaultMode": 0o444,
        "items": [{"key": "bundle.pem", "path": "ca.crt"}],
    }
    assert env["DETECTION_ES_CA_CERTS"] == "/etc/detection-job/ca/ca.crt"
    assert volumes["rules"]["configMap"]["name"] == "team-rules"
    assert {"key": "admin-tools.toml", "path": "exceptions/admin-tools.toml"} in volumes["rules"]["configMap"]["items"]


def test_inline_rules_become_a_configmap_mounted_by_path() -> None:
    manifests = render.template(["inline-rules.yaml"])
    values = yaml.safe_load((VALUES / "inline-rules.yaml").read_text())
    [config_map] = manifests.of_kind("ConfigMap")
    pod = manifests.one("CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    source = {volume["name"]: volume for volume in pod["volumes"]}["rules"]["configMap"]
    assert source["name"] == config_map["metadata"]["name"]
    by_path = {item["path"]: config_map["data"][item["key"]] for item in source["items"]}
    assert by_path == values["rules"]
    [container] = pod["containers"]
    assert _env(container)["DETECTION_RULES_DIR"] == "/etc/detection-job/rules"


def test_mutual_tls_mounts_the_ca_and_the_client_certificate() -> None:
    manifests = render.template(["mtls.yaml"])
    for where, pod in manifests.pod_specs():
        [container] = pod["containers"]
        env = _env(container)
        assert env["DETECTION_ES_CA_CERTS"] == "/etc/detection-job/ca/ca.crt", where
        assert env["DETECTION_ES_CLIENT_CERT"] == "/etc/detection-job/client/tls.crt", where
        assert env["DETECTION_ES_CLIENT_KEY"] == "/etc/detection-job/client/tls.key", where
        assert "DETECTION_SECRETS_DIR" not in env, f"{where}: no credentials Secret was asked for"
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        assert volumes["ca"]["secret"]["secretName"] == "es-ca"
        client = volumes["client-cert"]["secret"]
        assert client["secretName"] == "detection-job-client-tls"
        assert client["items"] == [{"key": "tls.crt", "path": "tls.crt"}, {"key": "tls.key", "path": "tls.key"}]
        assert client["defaultMode"] == 0o440, "the private key is not world-readable"
        mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
        assert mounts["client-cert"]["mountPath"] == "/etc/detection-job/client"
        assert mounts["client-cert"]["readOnly"] is True


INVALID: list[tuple[str, str | dict[str, Any], str]] = [
    ("shards-not-a-number", "invalid-shards.yaml", "/shards"),
    ("unknown-mode", "invalid-mode.yaml", "/mode"),
    ("shards-zero", {"shards": 0}, "/shards"),
    ("unknown-key", {"schedule": "*/5 * * * *"}, "schedule"),
    ("credentials-without-keys", {"credentials": {"apiKeyKey": "", "usernameKey": "user"}}, "/credentials"),
    ("ca-from-both", {"elasticsearch": {"ca": {"secretName": "a", "configMapName": "b"}}}, "/elasticsearch/ca"),
    ("host-not-a-url", {"elasticsearch": {"hosts": ["elasticsearch:9200"]}}, "/elasticsearch/hosts/0"),
    ("rule-outside-exceptions", {"rules": {"other/x.toml": "x"}}, "other/x.toml"),
    ("rule-not-toml", {"rules": {"x.yaml": "x"}}, "x.yaml"),
    ("log-format", {"config": {"logFormat": "json"}}, "/config/logFormat"),
    ("env-value-and-valueFrom", {"extraEnv": [{"name": "A", "value": "1", "valueFrom": {}}]}, "/extraEnv/0"),
    ("schedule", {"cronjob": {"schedule": "every 10 minutes"}}, "/cronjob/schedule"),
    ("run-timeout", {"config": {"runTimeout": "1h30m"}}, "/config/runTimeout"),
]


@pytest.mark.parametrize(("case", "values", "field"), INVALID, ids=[case for case, _, _ in INVALID])
def test_the_schema_refuses_wrong_values(case: str, values: str | dict[str, Any], field: str, tmp_path: Path) -> None:
    if isinstance(values, dict):
        path = tmp_path / f"{case}.yaml"
        path.write_text(json.dumps(values))
        args = ["--values", str(path)]
    else:
        args = ["--values", str(VALUES / values)]
    for command in (["template", "x", str(CHART)], ["lint", str(CHART)]):
        result = render.helm(*command, *args, check=False)
        assert result.returncode != 0, f"{case}: helm {command[0]} accepted it"
        output = result.stdout + result.stderr
        assert "don't meet the specifications of the schema" in output, output
        assert field in output, output
