"""Reading files that anyone may have put in our way: bounded in size, never blocking.

A FIFO, a device or a socket where a file is expected would block or never end; a 10 GB file would
fill the memory. :func:`read_bounded` opens without blocking (``O_NONBLOCK``), checks on the open
descriptor that it is a regular file (so a file swapped after a check cannot slip through), and
reads at most ``limit`` bytes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class FileProblem(ValueError):
    """Why a file cannot be read; the message never holds the file's content."""


def read_bounded(path: Path, limit: int, *, what: str = "files") -> bytes:
    """The bytes of ``path``; ``FileProblem`` if it is missing, not a regular file, over ``limit`` or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise FileProblem(f"cannot read: {_reason(exc)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileProblem("cannot read: not a regular file")
        if info.st_size > limit:
            raise FileProblem(f"file is {info.st_size} bytes, over the limit of {limit} bytes for {what}")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise FileProblem(f"cannot read: {_reason(exc)}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise FileProblem(f"file is over the limit of {limit} bytes for {what}")
    return b"".join(chunks)


def decode_utf8(data: bytes) -> str:
    """UTF-8 text, without a leading byte order mark; ``FileProblem`` naming the first bad byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileProblem(f"not UTF-8 text (byte {exc.start}, line {line})") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
