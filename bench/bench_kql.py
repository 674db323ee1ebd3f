"""KQL translation speed on a realistic 10 KB detection query (target: under 20 ms)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from job.kql import parse, to_dsl

BLOCK = (
    "(event.category:process and event.type:(start or process_started) and host.os.type:windows and "
    'process.name:("cmd.exe" or "powershell.exe" or "pwsh.exe" or "rundll32.exe" or "regsvr32.exe") and '
    "process.command_line:(*-enc* or *IEX* or *FromBase64String* or *DownloadString*) and "
    'not user.name:(SYSTEM or "LOCAL SERVICE" or "NETWORK SERVICE") and '
    r'not process.parent.executable:"C:\\Windows\\System32\\services.exe" and '
    "not process.executable:C\\:\\\\Program*Files*\\\\Vendor{n}\\\\*.exe and "
    "@timestamp >= now-15m and process.pid > 4 and registry.data.strings:*Run{n}*)"
)


def realistic_query(size: int = 10_000) -> str:
    """``or`` of varied rule-like blocks, at least ``size`` characters long."""
    parts: list[str] = []
    n = 0
    while sum(len(p) + 4 for p in parts) < size:
        parts.append(BLOCK.replace("{n}", str(n)))
        n += 1
    return " or ".join(parts)


def ecs_like_fields(count: int = 2000) -> dict[str, str]:
    """A field map of ECS size: the query's fields plus filler."""
    fields = {
        "@timestamp": "date",
        "event.category": "keyword",
        "event.type": "keyword",
        "host.os.type": "keyword",
        "process.name": "keyword",
        "process.command_line": "wildcard",
        "process.command_line.text": "match_only_text",
        "user.name": "keyword",
        "process.parent.executable": "keyword",
        "process.executable": "keyword",
        "process.pid": "long",
        "registry.data.strings": "wildcard",
    }
    for i in range(count - len(fields)):
        fields[f"filler.group{i % 50}.field{i}"] = "keyword"
    return fields


def _timings(action: Callable[[], object], runs: int) -> list[float]:
    action()  # warm-up (grammar load)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    query = realistic_query()
    fields = ecs_like_fields()
    print(f"query: {len(query)} characters")
    cases: list[tuple[str, Callable[[], object]]] = [
        ("parse", lambda: parse(query)),
        ("to_dsl, no field types", lambda: to_dsl(query)),
        (f"to_dsl, {len(fields)} field types", lambda: to_dsl(query, fields)),
    ]
    for name, action in cases:
        times = _timings(action, runs=100)
        p95 = statistics.quantiles(times, n=20)[-1]
        print(f"{name:32s} min {min(times):6.2f} ms   median {statistics.median(times):6.2f} ms   p95 {p95:6.2f} ms")


if __name__ == "__main__":
    main()
