"""``make demo``: the job end to end on the local node (``python -m job.demo``)."""

from __future__ import annotations

import sys

from job.cli import main as cli_main


def main() -> int:
    print("== detection-job check")
    return cli_main(["check"])


if __name__ == "__main__":
    sys.exit(main())
