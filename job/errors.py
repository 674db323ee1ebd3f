"""The job's error tree.

    JobError
    ├── ConfigError        a setting is missing or malformed (exit code 2)
    ├── RuleError          a rule file cannot be loaded or validated (file and line)
    └── ElasticsearchUnavailable   the cluster cannot be reached or refuses us (exit code 2)

``job.kql.KqlSyntaxError`` (a ``ValueError``) is raised for queries that do not parse.
"""

from __future__ import annotations

from job.redact import one_line

MAX_MESSAGE_CHARS = 2000


class JobError(Exception):
    """Root of the errors the job raises on purpose."""


class ConfigError(JobError):
    """A setting is missing or malformed; the message names the variable."""


class ElasticsearchUnavailable(JobError):
    """Elasticsearch cannot be reached, or refuses the credentials."""


class RuleError(JobError):
    """A rule file is invalid. ``str()`` is ``FILE:LINE: message`` (``FILE: message`` without a line)."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.message = message
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        # One line, whatever a file name or a value quoted in the message holds (newlines, bidi controls).
        where = f"{one_line(self.path)}:{self.line}" if self.line is not None else one_line(self.path)
        message = self.message
        if len(message) > MAX_MESSAGE_CHARS:  # a message quoting a value as long as the file
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({len(message)} characters)"
        return f"{where}: {one_line(message)}"
