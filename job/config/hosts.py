"""The cluster's URLs (``DETECTION_ES_HOSTS``): each checked and written out in full, with any credentials
in them taken out, so that no URL the job holds, prints or logs carries a password. Errors never quote
a URL: it may hold one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

_DEFAULT_PORTS = {"http": 80, "https": 443}


def parse_host(url: str, position: int) -> tuple[str, str | None, str | None]:
    """``(URL without credentials, user, password)`` of one ``DETECTION_ES_HOSTS`` entry.

    A URL without a port gets its scheme's (80, 443) written out, as the client needs one. Errors never
    quote the URL: it may hold a password.
    """
    where = f"entry {position}"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in url):
        raise ValueError(f"{where} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        raise ValueError(f"{where} is not a valid URL (a port from 1 to 65535, an IPv6 host in [...])") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError(f"{where} is not an http:// or https:// URL")
    if not hostname:
        raise ValueError(f"{where} has no host")
    if port == 0:
        raise ValueError(f"{where}: the port must be a number from 1 to 65535")
    if parts.query or parts.fragment or url.rstrip().endswith(("?", "#")):
        raise ValueError(f"{where}: a URL of the cluster takes no query (?) or fragment (#)")
    host = parts.netloc.rpartition("@")[2]
    if port is None:
        host = f"{host}:{_DEFAULT_PORTS[scheme]}"
    clean = f"{scheme}://{host}{parts.path.rstrip('/')}"
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return clean, user, password


def split_hosts(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def secret_text(value: Any) -> str | None:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value if isinstance(value, str) and value else None


def move_url_credentials(data: dict[str, Any]) -> dict[str, Any]:
    """Credentials from the host URLs into ``es_username`` / ``es_password``, when that is unambiguous.

    When it is not (two URLs with different credentials, a URL whose credentials differ from the
    settings', or an API key besides), the URLs are left as they are and the ``es_hosts`` check
    reports the conflict.
    """
    raw = data.get("es_hosts")
    urls = split_hosts(raw) if isinstance(raw, str) else tuple(raw) if isinstance(raw, list | tuple) else ()
    found: set[tuple[str, str]] = set()
    cleaned = []
    for position, url in enumerate(urls, start=1):
        if not isinstance(url, str):
            return data
        try:
            clean, user, password = parse_host(url, position)
        except ValueError:
            return data
        if user is not None:
            found.add((user, password or ""))
        cleaned.append(clean)
    if len(found) != 1 or secret_text(data.get("es_api_key")) is not None:
        return data
    user, password = found.pop()
    configured_user, configured_password = data.get("es_username"), secret_text(data.get("es_password"))
    if configured_user not in (None, "", user) or configured_password not in (None, password):
        return data
    return {**data, "es_hosts": tuple(cleaned), "es_username": user, "es_password": password}
