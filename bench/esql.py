"""The ES|QL figure of ``make bench``: a non-aggregating ES|QL rule against the query rule of the same
selectivity, both run as processes on the ES|QL node (``BENCH_ESQL_HOSTS``, which ``make bench`` starts).

The query rule is the seed rule (credential dumping detected); the ES|QL rule runs the seed rule's own KQL
through ES|QL's ``KQL()`` (27 production ES|QL rules filter so), with ``METADATA _id`` and a ``KEEP`` as
production rules have, so both alert on exactly the same events. Each measured run starts from fresh alert
and execution indices (``detection-job setup``, not timed); the runs alternate and the medians are compared.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from bench import data
from job.rules.model import Rule

SIZES = (2_000, 5_000)  # an ES|QL page holds at most 10,000 rows (max_signals + 1 of them)
REPEAT = 5
KEEP = "_id, _index, @timestamp, host.name, user.name, process.name, event.action"
TARGET = 1.5


def esql_rule(seed: Rule) -> Rule:
    """The seed rule as an ES|QL rule with the same selectivity."""
    fields = seed.model_dump(mode="json", by_alias=True, exclude={"source"}, exclude_none=True)
    query = (
        f'FROM {seed.index[0]} METADATA _id, _version, _index\n| WHERE KQL("""{seed.query.strip()}""")\n| KEEP {KEEP}'
    )
    fields.update(type="esql", language="esql", query=query, rule_id=f"{seed.rule_id}-esql", index=[])
    return Rule.model_validate(fields)


def esql_vs_query(bench: Any, row: Any) -> list[Any]:
    """The figure's rows (``bench``: a ``bench.suite.Bench`` on the ES|QL node; ``row``: its ``Row``)."""
    rows = []
    for size in SIZES:
        events = data.matching_events(bench.es, size)
        seed = data.seed_rule(events.index, size)
        folders: dict[str, Path] = {
            "query": bench.rules_dir(f"esql-bench-query-{size}", [seed]),
            "esql": bench.rules_dir(f"esql-bench-esql-{size}", [esql_rule(seed)]),
        }
        seconds: dict[str, list[float]] = {"query": [], "esql": []}
        for rep in range(REPEAT):
            order = ("query", "esql") if rep % 2 == 0 else ("esql", "query")
            for kind in order:
                prefix = f"bench-esqlvs-{kind}-{size}"
                env = bench.fresh(prefix, folders[kind], alerts_max=str(size))
                seconds[kind].append(bench.job(env).seconds)
                created = bench.created(prefix)
                assert created == size, f"the {kind} rule wrote {created} of {size} alerts"
        query, esql = (statistics.median(seconds[kind]) for kind in ("query", "esql"))
        rows.append(
            row(
                f"{size:,} alerts: ES|QL rule / query rule, same events (ES|QL node)",
                f"{esql:.2f} s / {query:.2f} s = {esql / query:.2f}",
                f"<= {TARGET}",
                esql / query <= TARGET,
                {"esql_s": esql, "query_s": query},
            )
        )
    return rows


def esql_url() -> str | None:
    """The ES|QL node ``make bench`` started (None: the figure is not measured)."""
    hosts = os.environ.get("BENCH_ESQL_HOSTS", "").strip()
    return hosts.split(",")[0] if hosts else None
