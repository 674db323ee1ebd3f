"""``detection-job lists import|show|delete`` on the real node: Kibana's documents, parsing, refusals."""

from __future__ import annotations

from typing import Any

import pytest

from job.cli import main as cli_main
from job.lists.model import MAX_IMPORT_BYTES
from tests.integration.run.conftest import JobEnv

pytestmark = pytest.mark.integration


def use_lists(job_env: JobEnv) -> tuple[str, str]:
    """Point the job at list indices of this test's own (deleted with its other indices)."""
    lists, items = f"{job_env.prefix}-lists", f"{job_env.prefix}-list-items"
    job_env.set(lists_index=lists, list_items_index=items)
    return lists, items


def import_list(job_env: JobEnv, name: str, list_type: str, lines: list[str], *extra: str) -> int:
    path = job_env.rules_dir.parent / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return cli_main(["lists", "import", str(path), "--type", list_type, *extra])


def _items(job_env: JobEnv, items: str, list_id: str) -> list[dict[str, Any]]:
    job_env.es.indices.refresh(index=items)
    response = job_env.es.search(index=items, query={"term": {"list_id": list_id}}, size=100)
    return [hit["_source"] for hit in response["hits"]["hits"]]


def test_import_creates_a_kibana_shaped_list(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    lists, items = use_lists(job_env)
    lines = ["10.0.0.1-10.0.0.9", " 192.168.0.0/16 ", "", "172.16.5.5", "172.16.5.5", "a-b-c"]
    assert import_list(job_env, "jump hosts.txt", "ip_range", lines) == 1  # "a-b-c" is not an IP range
    out, err = capsys.readouterr()
    assert out.strip() == "created list 'jump hosts.txt' (ip_range): 3 values stored, 1 refused"
    assert err.startswith(f"{job_env.rules_dir.parent / 'jump hosts.txt'}:6: value 'a-b-c' refused by Elasticsearch: ")

    document = job_env.es.get(index=lists, id="jump hosts.txt")["_source"]
    assert {k: document[k] for k in ("name", "description", "type", "immutable", "version")} == {
        "name": "jump hosts.txt",
        "description": "File uploaded from file system of jump hosts.txt",
        "type": "ip_range",
        "immutable": False,
        "version": 1,
    }
    assert {"@timestamp", "created_at", "created_by", "updated_at", "updated_by", "tie_breaker_id"} <= set(document)
    stored = sorted(str(item["ip_range"]) for item in _items(job_env, items, "jump hosts.txt"))
    assert stored == [
        "192.168.0.0/16",
        str({"gte": "10.0.0.1", "lte": "10.0.0.9"}),
        str({"gte": "172.16.5.5", "lte": "172.16.5.5"}),
    ]

    assert cli_main(["lists", "show", "jump hosts.txt"]) == 0
    out, err = capsys.readouterr()
    assert sorted(out.splitlines()) == ["10.0.0.1-10.0.0.9", "172.16.5.5-172.16.5.5", "192.168.0.0/16"]
    assert "type: ip_range" in err.splitlines() and "items: 3" in err.splitlines()


def test_show_output_imports_again_unchanged(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    """A list's export (what show prints, and Kibana's export) is a valid import file."""
    use_lists(job_env)
    assert import_list(job_env, "ranges.txt", "ip_range", ["10.0.0.1-10.0.0.9", "10.1.1.1", "10.2.0.0/16"]) == 0
    capsys.readouterr()
    assert cli_main(["lists", "show", "ranges.txt"]) == 0
    exported = capsys.readouterr().out.splitlines()
    assert import_list(job_env, "copy.txt", "ip_range", exported, "--list-id", "copy") == 0
    capsys.readouterr()
    assert cli_main(["lists", "show", "copy"]) == 0
    assert sorted(capsys.readouterr().out.splitlines()) == sorted(exported)


def test_reimport_appends_and_types_must_agree(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    _, items = use_lists(job_env)
    assert import_list(job_env, "a.txt", "keyword", ["x", "y"], "--list-id", "tools") == 0
    assert import_list(job_env, "b.txt", "keyword", ["y", "z"], "--list-id", "tools") == 0
    assert sorted(item["keyword"] for item in _items(job_env, items, "tools")) == ["x", "y", "y", "z"]
    capsys.readouterr()
    assert import_list(job_env, "c.txt", "ip", ["10.0.0.1"], "--list-id", "tools") == 1
    assert "list 'tools' holds keyword values, not ip" in capsys.readouterr().err


def test_values_elasticsearch_refuses_are_reported_per_line(
    job_env: JobEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    use_lists(job_env)
    assert import_list(job_env, "ips.txt", "ip", ["10.0.0.1", "n/a", "10.0.0.0/8", "::1"]) == 1
    out, err = capsys.readouterr()
    assert "2 values stored, 2 refused" in out
    refused = [line.split(": value ")[0].rsplit(":", 1)[1] for line in err.splitlines()]
    assert refused == ["2", "3"]
    assert import_list(job_env, "ports.txt", "long", ["443", "http"]) == 1
    assert "value 'http' refused by Elasticsearch" in capsys.readouterr().err


def test_delete_removes_the_list_and_its_items(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    lists, items = use_lists(job_env)
    assert import_list(job_env, "x.txt", "keyword", [f"v{n}" for n in range(12)]) == 0
    capsys.readouterr()
    assert cli_main(["lists", "delete", "x.txt"]) == 0
    assert capsys.readouterr().out.strip() == "deleted list 'x.txt' and 12 values"
    assert not job_env.es.exists(index=lists, id="x.txt")
    assert _items(job_env, items, "x.txt") == []
    assert cli_main(["lists", "delete", "x.txt"]) == 1
    assert cli_main(["lists", "show", "x.txt"]) == 1
    assert f"no list 'x.txt' in {lists}" in capsys.readouterr().err


def test_files_over_kibanas_limit_and_bad_ids_are_refused(job_env: JobEnv, capsys: pytest.CaptureFixture[str]) -> None:
    use_lists(job_env)
    big = job_env.rules_dir.parent / "big.txt"
    big.write_bytes(b"x" * (MAX_IMPORT_BYTES + 1))
    assert cli_main(["lists", "import", str(big), "--type", "keyword"]) == 1
    assert f"over Kibana's import limit of {MAX_IMPORT_BYTES} bytes" in capsys.readouterr().err
    assert import_list(job_env, "ok.txt", "keyword", ["a"], "--list-id", "_bad") == 1
    assert import_list(job_env, "ok.txt", "keyword", ["a"], "--list-id", "x" * 513) == 1
    (job_env.rules_dir.parent / "latin1.txt").write_bytes(b"caf\xe9\n")
    assert cli_main(["lists", "import", str(job_env.rules_dir.parent / "latin1.txt"), "--type", "keyword"]) == 1
    assert "not UTF-8 text (byte 3)" in capsys.readouterr().err
