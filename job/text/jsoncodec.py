"""JSON in and out of Elasticsearch for documents that may be hostile.

* Depth. Elasticsearch accepts documents nested up to 1,000 levels (objects and arrays). Python's
  ``json`` C code counts each level against the interpreter's recursion limit (1,000 by default on
  Python 3.11), so a page holding such an event could not be decoded, nor its alert encoded.
  :func:`allow_deep_documents` raises the limit once at start to :data:`RECURSION_LIMIT`, enough for
  the deepest document plus the response around it; on Python 3.12+ the C code has its own, higher
  limit. Everything in the job that walks an event is iterative and does not need it.
* Bytes. Elasticsearch keeps ``_source`` as it was sent, and accepts some byte sequences that are not
  valid UTF-8 (an overlong ``C0 80``, encoded surrogates). A response holding one cannot be decoded
  strictly: :class:`TolerantJsonSerializer` then decodes it with ``surrogateescape``, keeping each
  invalid byte as a lone surrogate instead of failing the whole page.
* Out: bodies are serialized with ``orjson`` (several times faster than ``json``), which writes UTF-8
  and refuses what it cannot write faithfully: a lone surrogate, nesting deeper than 255 levels, an
  integer beyond 64 bits, a key that is not a string. Those documents (and only those) fall back to
  ``json`` with ``ensure_ascii``, so a lone surrogate is sent as a ``\\udXXX`` escape, which
  Elasticsearch accepts, never as invalid UTF-8. ``orjson`` would write a non-finite float as ``null``:
  alerts never hold one (:mod:`job.alerts.conform` drops them) and the job's own requests have none.
  Alerts are serialized one by one (:func:`document_bytes`), so one that cannot be is that event's
  problem alone.
* Responses are decoded with ``json``: ``orjson`` reads an integer beyond 64 bits as a float, which
  would change an event's value in its alert.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import orjson
from elasticsearch.serializer import JsonSerializer, NdjsonSerializer

RECURSION_LIMIT = 4000


def allow_deep_documents() -> None:
    """Let the ``json`` C code decode and encode documents as deep as Elasticsearch accepts."""
    if sys.getrecursionlimit() < RECURSION_LIMIT:
        sys.setrecursionlimit(RECURSION_LIMIT)


def safe_document_bytes(document: Any) -> bytes:
    """Compact ASCII JSON with the standard library; raises ``ValueError`` for non-finite numbers,
    ``RecursionError`` past the depth limit, ``TypeError`` for values that are not JSON."""
    return json.dumps(document, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def document_bytes(document: Any) -> bytes:
    """Compact JSON: ``orjson`` where it writes the document faithfully, else :func:`safe_document_bytes`
    (which raises for what JSON cannot carry). The caller guarantees no non-finite floats (alerts pass
    through :func:`job.alerts.conform.conform`)."""
    try:
        return orjson.dumps(document)
    except TypeError:  # orjson.JSONEncodeError: surrogates, depth > 255, big ints, non-str keys, ...
        return safe_document_bytes(document)


def _dumps(data: Any, default: Callable[[Any], Any]) -> bytes:
    try:
        return orjson.dumps(data, default=default)
    except TypeError:
        return json.dumps(data, default=default, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def _loads(data: bytes) -> Any:
    try:
        return json.loads(data)
    except UnicodeDecodeError:
        return json.loads(data.decode("utf-8", "surrogateescape"))


class TolerantJsonSerializer(JsonSerializer):
    """The client's JSON serializer, made to survive the bytes an event can carry."""

    def json_loads(self, data: bytes) -> Any:
        return _loads(data)

    def json_dumps(self, data: Any) -> bytes:
        return _dumps(data, self.default)


class TolerantNdjsonSerializer(NdjsonSerializer):
    """The same for bulk bodies (lines given as bytes are sent as they are)."""

    def json_loads(self, data: bytes) -> Any:
        return _loads(data)

    def json_dumps(self, data: Any) -> bytes:
        return _dumps(data, self.default)


def client_serializers() -> dict[str, JsonSerializer]:
    """The ``serializers`` option of the Elasticsearch client."""
    return {
        TolerantJsonSerializer.mimetype: TolerantJsonSerializer(),
        TolerantNdjsonSerializer.mimetype: TolerantNdjsonSerializer(),
    }
