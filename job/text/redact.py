"""Keeping secrets and control characters out of everything the job prints, logs or records.

* :func:`redact` replaces the password of every URL in a text (``https://user:***@host``) and any
  configured secret value (``***``). Every error formatter runs its text through it, and
  :class:`RedactingFilter` does the same for every log record, exception text included.
* :func:`one_line` makes a text safe to print as one line: line breaks, control characters and
  bidirectional-override characters (which can make a file name read backwards) are escaped.

Both run in linear time, whatever the text.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"
# Where the authority part of a URL ends (RFC 3986), or where a URL in prose ends.
_AUTHORITY_END = re.compile(r"[/?#\s\"'<>\[\]`(){}|\\^]")
# Line breaks, C0/C1 controls, and the Unicode characters that reorder or break lines of text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _redact_urls(text: str) -> str:
    out: list[str] = []
    start = 0
    position = text.find("://")
    while position != -1:
        authority = position + 3
        end_match = _AUTHORITY_END.search(text, authority)
        end = end_match.start() if end_match else len(text)
        at = text.rfind("@", authority, end)
        if at != -1:
            colon = text.find(":", authority, at)
            if colon != -1 and text[colon + 1 : at] != MASK:
                out.append(text[start : colon + 1])
                out.append(MASK)
                start = at
        position = text.find("://", max(end, authority))
    out.append(text[start:])
    return "".join(out)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with the password of every URL masked (``https://user:***@host``) and each of ``secrets`` masked."""
    text = _redact_urls(text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """``text`` with line breaks, control and bidirectional-control characters escaped (``\\n`` → ``\\x0a``)."""
    return _UNSAFE.sub(_escape, text)


class RedactingFilter(logging.Filter):
    """Masks URL passwords and the given secrets in every record that passes (message, arguments, exception)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message, self.secrets), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.secrets)
        return True


def install_log_filter(secrets: Iterable[str] = (), logger: logging.Logger | None = None) -> RedactingFilter:
    """Put a :class:`RedactingFilter` on every handler of ``logger`` (default: the root logger)."""
    target = logger or logging.getLogger()
    log_filter = RedactingFilter(secrets)
    for handler in target.handlers:
        handler.addFilter(log_filter)
    return log_filter


_SPACES = re.compile(r"  +")


def short_line(text: str, limit: int = 500) -> str:
    """``text`` on one line, at most ``limit`` long: line breaks, control and format characters (terminal
    escapes, bidi overrides) become spaces."""
    flat = _SPACES.sub(" ", "".join(ch if ch.isprintable() else " " for ch in text[: limit * 4])).strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
