"""``python -m bench``: the suite (``bench/suite.py``: the table, ``bench/results/latest.json``); with
arguments, only the named parts of the suite (``alerts_vs_floor``, ``no_matches``, ``shipped_rules``,
``generated_rules``, ``start_and_kql``, ``new_terms``, ``eql_vs_query``, ``eql_sequences``) or micro-benchmark
modules (``bench_kql``, ``bench_rules``, ``bench_alerts``)."""

from __future__ import annotations

import importlib
import sys


def main(argv: list[str]) -> int:
    modules = [name for name in argv if name.startswith("bench_")]
    for name in modules:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
    parts = [name for name in argv if not name.startswith("bench_")]
    if parts or not modules:
        from bench import suite

        return suite.main(parts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
