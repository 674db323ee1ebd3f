"""Rule test results as people and CI systems read them: pytest-like lines, and a JUnit XML report."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from job.ruletests.runner import Result
from job.text.table import printable

WIDTH = 100
WORDS = {"passed": "PASSED", "failed": "FAILED", "error": "ERROR"}


def line(result: Result) -> str:
    """The line printed as a result comes in."""
    return f"{printable(result.id)} {WORDS[result.outcome]}"


def _rule(title: str, fill: str = "=") -> str:
    text = f" {title} "
    left = max((WIDTH - len(text)) // 2, 3)
    return f"{fill * left}{text}{fill * max(WIDTH - left - len(text), 3)}"


def counts(results: Sequence[Result]) -> str:
    found = Counter(result.outcome for result in results)
    parts = [
        f"{found[outcome]} {outcome if outcome != 'error' else 'errors'}"
        for outcome in ("passed", "failed", "error")
        if found[outcome]
    ]
    return ", ".join(parts) or "no tests ran"


def ending(results: Sequence[Result], seconds: float) -> str:
    """What follows the result lines: every failure and error with its reasons, then the counts."""
    lines = []
    failures = [result for result in results if result.outcome != "passed"]
    if failures:
        lines.append(_rule("FAILURES"))
        for result in failures:
            lines.append(_rule(printable(result.id), "_"))
            lines += [printable(text) for text in result.lines] or ["(no detail)"]
    lines.append(_rule(f"{counts(results)} in {seconds:.2f}s"))
    return "\n".join(lines)


def junit(results: Sequence[Result], seconds: float, path: Path) -> None:
    """A JUnit XML report (the format pytest's ``--junit-xml`` writes, which CI systems read)."""
    found = Counter(result.outcome for result in results)
    attributes = {
        "name": "detection-job test",
        "tests": str(len(results)),
        "failures": str(found["failed"]),
        "errors": str(found["error"]),
        "skipped": "0",
        "time": f"{seconds:.3f}",
    }
    suites = ET.Element("testsuites", attributes)
    suite = ET.SubElement(
        suites,
        "testsuite",
        {**attributes, "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "hostname": socket.gethostname()},
    )
    for result in results:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": printable(result.file),
                "name": printable(result.name),
                "file": printable(result.file),
                **({"line": str(result.line)} if result.line else {}),
                "time": f"{result.seconds:.3f}",
            },
        )
        if result.outcome != "passed":
            detail = "\n".join(printable(text) for text in result.lines)
            tag = "failure" if result.outcome == "failed" else "error"
            element = ET.SubElement(case, tag, {"message": detail.split("\n", 1)[0][:500]})
            element.text = detail
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
