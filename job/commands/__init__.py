"""One module per sub-command of ``detection-job``.

Each module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args, settings) -> int``.
"""

COMMANDS = (
    "check",
    "setup",
    "run",
    "schedule",
    "backfill",
    "preview",
    "rule_test",
    "status",
    "alerts",
    "deadletter",
    "validate",
    "translate",
    "import_rules",
    "lists",
)
