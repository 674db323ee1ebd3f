"""Shards: parsing, the Indexed Job's index, a stable and even split, and the settings that choose one."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from job.cli import main as cli_main
from job.config.settings import load_settings
from job.config.shards import Shard, in_shard, parse_shard, shard_from_completion_index, shard_of
from job.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("DETECTION_") or key == "JOB_COMPLETION_INDEX":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env file


@pytest.mark.parametrize(
    ("text", "shard"),
    [
        ("1/1", Shard(1, 1)),
        ("1/2", Shard(1, 2)),
        ("2/2", Shard(2, 2)),
        (" 3/7 ", Shard(3, 7)),
        ("10/1000", Shard(10, 1000)),
    ],
)
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(parse_shard(text)) == text.strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0/2", "between 1 and 2, got 0"),
        ("3/2", "between 1 and 2, got 3"),
        ("1/0", "between 1 and 1000, got 0"),
        ("1/1001", "between 1 and 1000, got 1001"),
        ("1", "expected I/N"),
        ("1/2/3", "expected I/N"),
        ("-1/2", "expected I/N"),
        ("a/b", "expected I/N"),
        ("１/２", "expected I/N"),  # full-width digits are not digits here
        ("", "expected I/N"),
    ],
)
def test_parse_shard_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_shard(text)


@pytest.mark.parametrize(
    ("index", "count", "shard"), [("0", 3, Shard(1, 3)), ("2", 3, Shard(3, 3)), (" 1\n", 2, Shard(2, 2))]
)
def test_the_completion_index_is_zero_based(index: str, count: int, shard: Shard) -> None:
    assert shard_from_completion_index(index, count) == shard


@pytest.mark.parametrize(("index", "count"), [("3", 3), ("-1", 3), ("one", 3), ("", 3), ("99999", 3), ("٣", 5)])
def test_a_bad_completion_index_is_refused(index: str, count: int) -> None:
    with pytest.raises(ValueError):
        shard_from_completion_index(index, count)


@pytest.mark.parametrize(
    ("rule_id", "sha256_prefix", "shards"),
    [
        ("a", "ca978112ca1bbdca", (1, 2, 5)),
        ("b", "3e23e8160039594a", (1, 2, 1)),
        ("c", "2e7d2c03a9507ae2", (1, 3, 4)),
        ("571afc56-5ed9-465d-a2a9-045f099f6e7e", "84412a21201918ab", (2, 3, 4)),
    ],
)
def test_the_split_is_stable_across_processes_and_versions(
    rule_id: str, sha256_prefix: str, shards: tuple[int, int, int]
) -> None:
    # The first 8 bytes of the rule_id's SHA-256, big-endian, modulo N, plus one: these never change.
    assert tuple(int(sha256_prefix, 16) % count + 1 for count in (2, 3, 7)) == shards
    assert tuple(shard_of(rule_id, count) for count in (2, 3, 7)) == shards


@pytest.mark.parametrize("count", [1, 2, 3, 7, 16])
def test_the_split_is_a_partition_and_roughly_even(count: int) -> None:
    ids = [f"rule-{i:05d}" for i in range(10_000)]
    sizes = Counter(shard_of(rule_id, count) for rule_id in ids)
    assert set(sizes) == set(range(1, count + 1))
    expected = len(ids) / count
    assert all(abs(size - expected) < 0.1 * expected for size in sizes.values()), sizes
    for rule_id in ids[:500]:
        assert [in_shard(rule_id, Shard(i, count)) for i in range(1, count + 1)].count(True) == 1
        assert in_shard(rule_id, None)


@pytest.mark.parametrize(
    ("env", "shard"),
    [
        ({}, None),
        ({"DETECTION_SHARD": "2/3"}, Shard(2, 3)),
        ({"DETECTION_SHARD": ""}, None),
        ({"DETECTION_SHARDS": "4", "JOB_COMPLETION_INDEX": "3"}, Shard(4, 4)),
        ({"DETECTION_SHARDS": "4", "JOB_COMPLETION_INDEX": "0"}, Shard(1, 4)),
        # DETECTION_SHARD wins over the Indexed Job's index
        ({"DETECTION_SHARD": "1/4", "DETECTION_SHARDS": "4", "JOB_COMPLETION_INDEX": "3"}, Shard(1, 4)),
        ({"JOB_COMPLETION_INDEX": "3"}, None),  # an Indexed Job that is not sharded
        ({"DETECTION_SHARDS": "4"}, None),  # not a pod of the Indexed Job: run and schedule refuse (below)
    ],
)
def test_the_shard_from_the_settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], shard: Shard | None) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert load_settings().shard == shard


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"DETECTION_SHARD": "4/3"}, "DETECTION_SHARD"),
        ({"DETECTION_SHARD": "two"}, "DETECTION_SHARD"),
        ({"DETECTION_SHARDS": "0"}, "DETECTION_SHARDS"),
        ({"DETECTION_SHARDS": "many"}, "DETECTION_SHARDS"),
        ({"DETECTION_SHARDS": "3", "JOB_COMPLETION_INDEX": "3"}, "JOB_COMPLETION_INDEX"),
        ({"DETECTION_SHARDS": "3", "JOB_COMPLETION_INDEX": "x"}, "JOB_COMPLETION_INDEX"),
        ({"DETECTION_SHARD": "1/2", "DETECTION_SHARDS": "3"}, "DETECTION_SHARD"),
        ({"DETECTION_SCHEDULE_INTERVAL": "10 minutes"}, "DETECTION_SCHEDULE_INTERVAL"),
    ],
)
def test_a_bad_shard_setting_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value).startswith(f"{variable}: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("env", "args", "line"),
    [
        ({"DETECTION_SHARD": "3/2"}, ["run"], "detection-job: DETECTION_SHARD: "),
        ({}, ["run", "--shard", "0/2"], "detection-job: --shard: the shard must be between 1 and 2, got 0"),
        ({}, ["run", "--shard", "x", "--all"], "detection-job: --shard: expected I/N"),
        ({}, ["run", "--shard", "1/2", "--rule", "r"], "detection-job: --shard: a rule named with --rule runs"),
        ({"DETECTION_SHARDS": "3"}, ["run"], "detection-job: DETECTION_SHARDS: set, but neither"),
        ({"DETECTION_SHARDS": "3"}, ["schedule"], "detection-job: DETECTION_SHARDS: set, but neither"),
        ({}, ["schedule", "--shard", "2/1"], "detection-job: --shard: "),
        ({}, ["status", "--shard", "1/"], "detection-job: --shard: expected I/N"),
    ],
)
def test_run_and_schedule_refuse_a_bad_shard_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str], args: list[str], line: str
) -> None:
    monkeypatch.setenv("DETECTION_ES_HOSTS", "http://127.0.0.1:9")  # never reached: refused before connecting
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli_main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(line)
    assert err.count("\n") == 1
