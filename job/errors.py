"""The job's error tree.

    JobError
    ├── ConfigError        a setting is missing or malformed (exit code 2)
    ├── RuleError          a rule file cannot be loaded or validated (file and line)
    ├── QueryError         a rule's query cannot be translated (also a ``ValueError``)
    │   ├── KqlSyntaxError       (``job.kql``) the KQL does not parse
    │   ├── KqlSemanticError     (``job.kql``) the KQL does not fit the fields (nested checks)
    │   └── UnsupportedLanguage  (``job.backends``) no query backend for the rule's language
    ├── ListError          (``job.lists``) a value list cannot be read or applied
    └── ElasticsearchUnavailable   the cluster cannot be reached or refuses us (exit code 2)

Errors stop something; problems that are only reported are ``job.text.diagnostics.Diagnostic`` records.
"""

from __future__ import annotations

from job.text.diagnostics import Diagnostic, error


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

    @property
    def diagnostic(self) -> Diagnostic:
        """This error as a record, to be collected with the other problems of a load."""
        return error(self.path, self.message, self.line)

    def __str__(self) -> str:
        return str(self.diagnostic)


class QueryError(JobError, ValueError):
    """A rule's query cannot be turned into Elasticsearch DSL; ``message`` is the one-line reason.

    Also a ``ValueError``, as the KQL errors always were. Subclasses with a position set ``line`` and
    ``column`` (1-based, in the query text).
    """

    line: int | None = None
    column: int | None = None

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)
