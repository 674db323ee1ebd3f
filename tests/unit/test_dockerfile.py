"""The Dockerfile's shape: dependencies before the source, the chart's user, the job as entrypoint.

No Docker engine runs here; tests/integration/test_installed_wheel.py runs the steps themselves.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.chart.pod import DOCKERFILE, instructions, read_image

ROOT = Path(__file__).resolve().parents[2]


def test_the_final_image_runs_the_job_unbuffered_as_the_charts_user() -> None:
    image = read_image()
    values = yaml.safe_load((ROOT / "helm" / "detection-job" / "values.yaml").read_text())
    assert image.entrypoint == ["detection-job"]
    assert image.env["PYTHONUNBUFFERED"] == "1"
    user, _, group = image.user.partition(":")
    assert user.isdigit() and group.isdigit(), "a numeric user, so Kubernetes can check runAsNonRoot"
    assert int(user) == values["securityContext"]["runAsUser"]
    assert int(group) == values["securityContext"]["runAsGroup"]


def test_dependencies_are_installed_before_the_source_is_copied() -> None:
    steps = [(keyword, rest) for keyword, rest in instructions(DOCKERFILE.read_text()) if keyword in {"COPY", "RUN"}]
    first_source = next(i for i, (keyword, rest) in enumerate(steps) if keyword == "COPY" and rest.startswith("job"))
    dependencies = next(i for i, (keyword, rest) in enumerate(steps) if keyword == "RUN" and "-r /requirements" in rest)
    assert steps[0] == ("COPY", "pyproject.toml ./")
    assert dependencies < first_source


def test_dockerignore_lets_in_only_what_the_wheel_is_built_from() -> None:
    lines = [line for line in (ROOT / ".dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        part.rstrip("/")
        for keyword, rest in instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not rest.startswith("--from")
        for part in rest.split()[:-1]
    }
    assert copied == allowed == {"pyproject.toml", "README.md", "job", "rule_defs"}
