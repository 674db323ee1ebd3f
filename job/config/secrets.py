"""The secrets the settings hold, in every form they may take on the wire, for the redaction of logs and
messages (``job.text.redact``)."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

from job.config.settings import Settings


def secret_values(settings: Settings) -> tuple[str, ...]:
    """Every secret the settings hold, in the forms it may take on the wire (basic auth is base64), for
    ``job.text.redact`` and the log formatters to mask wherever they might appear."""
    values: list[str] = []
    if settings.es_api_key is not None:
        values.append(settings.es_api_key.get_secret_value())
    if settings.es_password is not None:
        password = settings.es_password.get_secret_value()
        values.append(password)
        values.append(base64.b64encode(f"{settings.es_username or ''}:{password}".encode()).decode("ascii"))
    if settings.pushgateway_url is not None:
        try:
            url_password = urlsplit(settings.pushgateway_url.get_secret_value()).password
        except ValueError:
            url_password = None
        if url_password:
            values.append(url_password)
    return tuple(value for value in values if value)
