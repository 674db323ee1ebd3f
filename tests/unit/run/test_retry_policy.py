"""The retry policy builds and runs with the installed tenacity (make test-lowest runs this against the
lowest version pyproject.toml allows: 9.0 and 9.1 lack wait_exponential_jitter(multiplier=...))."""

from __future__ import annotations

from job.client.retry import RetryPolicy


def test_the_policy_builds_and_returns_the_result() -> None:
    calls: list[int] = []

    def succeed() -> str:
        calls.append(1)
        return "done"

    assert RetryPolicy(attempts=2, max_seconds=5).call(succeed) == "done"
    assert calls == [1]
