"""The alert id scheme is frozen: these golden values must never change (every old alert would re-fire)."""

from __future__ import annotations

import re

import pytest

from job.alerts.ids import alert_id


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            ("endgame-2024.05", "AbC123", "571afc56-5ed9-465d-a2a9-045f099f6e7e", "default"),
            "806ea50e6163cc62f10bc97d5cd1e491073fc528ba697e67e9c96370f900281c",
        ),
        (("a", "bc", "r", "default"), "011a75259f376ccc207e23cfdc8f502348160c5651fb3bc02904bd835d53b908"),
        (("ab", "c", "r", "default"), "826baf035f25a63201c782c2bfb7166f4a4905648b14b0b5551012cfe500bf59"),
        (("índex-ü", "日本", 'r"q', "s"), "1dc9bcb8b0a37c872b75e12d1295d7d44c70994b7cea6af2db985c4904f7c779"),
    ],
)
def test_golden_values(parts: tuple[str, str, str, str], expected: str) -> None:
    assert alert_id(*parts) == expected


def test_parts_that_concatenate_alike_do_not_collide() -> None:
    # Kibana's separator-less concatenation would give these the same id.
    assert alert_id("a", "bc", "r", "s") != alert_id("ab", "c", "r", "s")
    assert alert_id("i", "d", "r", "s:x") != alert_id("i", "d", "r:s", "x")


@pytest.mark.parametrize("position", range(4))
def test_every_part_changes_the_id(position: int) -> None:
    parts = ["index", "id", "rule", "space"]
    changed = list(parts)
    changed[position] += "x"
    assert alert_id(*parts) != alert_id(*changed)


def test_lowercase_hex_sha256() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", alert_id("i", "d", "r", "s"))
