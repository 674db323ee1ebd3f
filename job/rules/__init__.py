"""Detection rules: the typed model, the TOML loader and writer, exceptions, caps and validation.

``load_rule(path)`` / ``load_rules(paths)`` read elastic/detection-rules TOML files (whether a loaded rule
runs here as Kibana would run it is for its rule type to say: ``job.ruletypes.checks.validate_rule``);
``build_exception_filter`` turns exception items into one ``must_not`` clause; ``effective_max_signals``
applies the global alerts cap.
"""

from __future__ import annotations

from job.errors import RuleError
from job.rules.caps import effective_max_signals
from job.rules.exceptions import build_exception_filter
from job.rules.loader import LoadResult, RuleFileError, load_rule, load_rules, read_rule
from job.rules.model import Rule
from job.rules.parts import ExceptionEntry, ExceptionItem, ExceptionList
from job.rules.validation import Finding
from job.rules.writer import rule_to_toml

__all__ = [
    "ExceptionEntry",
    "ExceptionItem",
    "ExceptionList",
    "Finding",
    "LoadResult",
    "Rule",
    "RuleError",
    "RuleFileError",
    "build_exception_filter",
    "effective_max_signals",
    "load_rule",
    "load_rules",
    "read_rule",
    "rule_to_toml",
]
