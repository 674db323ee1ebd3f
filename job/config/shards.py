"""Shards of the rule set: ``I/N`` takes the rules whose stable hash of ``rule_id`` falls in shard I of N.

N processes given ``1/N`` .. ``N/N`` run every rule exactly once without talking to each other. The
hash is SHA-256 of the rule_id (never Python's ``hash``, which is salted per process), so every
process, host and version agrees on which shard a rule belongs to.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

MAX_SHARDS = 1000
_SHARD = re.compile(r"^([0-9]{1,4})/([0-9]{1,4})$")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS:
            raise ValueError(f"the number of shards must be between 1 and {MAX_SHARDS}, got {self.count}")
        if not 1 <= self.index <= self.count:
            raise ValueError(f"the shard must be between 1 and {self.count}, got {self.index}")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"2/3"`` into ``Shard(2, 3)``; ValueError (saying what is expected) for anything else."""
    match = _SHARD.match(text.strip())
    if match is None:
        raise ValueError(f"expected I/N with 1 <= I <= N (e.g. 1/3), got {text[:40]!r}")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_from_completion_index(index: str, count: int) -> Shard:
    """The shard of a Kubernetes Indexed Job's pod: its 0-based ``JOB_COMPLETION_INDEX`` of ``count``."""
    text = index.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        raise ValueError(f"expected a whole number from 0 to {count - 1}, got {index[:40]!r}")
    if int(text) >= count:
        raise ValueError(f"{int(text)} is not below DETECTION_SHARDS={count} (indices are 0-based)")
    return Shard(int(text) + 1, count)


def stable_hash(rule_id: str, salt: str = "") -> int:
    """A 64-bit number from the SHA-256 of ``salt + rule_id``: the same in every process and version."""
    digest = hashlib.sha256((salt + rule_id).encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big")


def shard_of(rule_id: str, count: int) -> int:
    """The 1-based shard of ``rule_id`` among ``count`` shards; the same in every process."""
    return stable_hash(rule_id) % count + 1


def in_shard(rule_id: str, shard: Shard | None) -> bool:
    """True when ``rule_id`` belongs to ``shard`` (every rule does when there is no shard)."""
    return shard is None or shard_of(rule_id, shard.count) == shard.index
