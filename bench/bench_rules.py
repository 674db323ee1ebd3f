"""Rule loading speed: the shipped rules, a folder of 1000 rules, the key-line scan, and exception filters."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from job.config.settings import SHIPPED_RULES_DIR
from job.rules import ExceptionItem, build_exception_filter, load_rules, rule_to_toml
from job.rules.files import read_text
from job.rules.positions import key_lines
from job.ruletypes.checks import validate_rule


def _best(function: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of ``repeat`` runs, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def _corpus(folder: Path, count: int) -> None:
    """``count`` distinct copies of the shipped rules (new rule_id and name each)."""
    rules = load_rules([SHIPPED_RULES_DIR]).rules
    for n in range(count):
        rule = rules[n % len(rules)]
        copy = rule.model_copy(update={"rule_id": f"{rule.rule_id[:-6]}{n:06d}", "name": f"{rule.name} {n}"})
        (folder / f"rule_{n:06d}.toml").write_text(rule_to_toml(copy))


def main() -> None:
    shipped = load_rules([SHIPPED_RULES_DIR])
    seconds = _best(lambda: load_rules([SHIPPED_RULES_DIR]))
    count = len(shipped.rules)
    print(f"load rule_defs/ ({count} rules): {seconds * 1000:.1f} ms, {seconds / count * 1000:.2f} ms per rule")

    now = datetime.now(UTC)
    seconds = _best(lambda: [validate_rule(r, alerts_max=1000, now=now) for r in shipped.rules])
    print(f"validate {len(shipped.rules)} rules (KQL translation included): {seconds * 1000:.1f} ms")

    text = read_text(SHIPPED_RULES_DIR / "credential_access_endgame_cred_dumping_detected.toml")
    seconds = _best(lambda: key_lines(text), repeat=50)
    print(f"key_lines of the seed rule ({len(text)} characters): {seconds * 1e6:.0f} us")

    with tempfile.TemporaryDirectory() as folder:
        _corpus(Path(folder), 1000)
        seconds = _best(lambda: load_rules([Path(folder)]), repeat=3)
        print(f"load 1000 rule files: {seconds:.2f} s, {seconds:.2f} ms per rule")

    entries = [{"field": "user.name", "type": "match", "value": "svc"}, {"field": "host.name", "type": "exists"}]
    items = [
        ExceptionItem.model_validate({"item_id": f"i{n}", "entries": entries, "os_types": ["windows"]})
        for n in range(1000)
    ]
    seconds = _best(lambda: build_exception_filter(items, now=now))
    print(f"build_exception_filter, 1000 items with os_types: {seconds * 1000:.1f} ms")


if __name__ == "__main__":
    main()
