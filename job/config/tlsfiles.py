"""Checks of the TLS files named by settings (CA bundle, client certificate and key), done at start.

Each file is read like any file we do not control (``job.text.safefile``: regular file, bounded, never
blocking) and then loaded by Python's ``ssl`` module exactly as the client will load it, so a file
that would fail on the first request fails at start instead, with the setting's name.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from job.text.safefile import FileProblem, decode_utf8, read_bounded

# A CA bundle with every public root is about 250 KB.
MAX_PEM_BYTES = 1024 * 1024
_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


class _NoPassword(Exception):
    pass


def _refuse_password() -> str:
    # Without this callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    raise _NoPassword


def read_pem(path: Path) -> str:
    """The text of a PEM file; ``ValueError`` saying why it cannot be one."""
    try:
        return decode_utf8(read_bounded(path, MAX_PEM_BYTES, what="PEM files"))
    except FileProblem as exc:
        raise ValueError(f"{path}: {exc}") from None


def check_ca_bundle(path: Path) -> None:
    """``ValueError`` unless ``path`` is a readable PEM file holding at least one certificate."""
    text = read_pem(path)
    if _CERTIFICATE not in text:
        raise ValueError(f"{path}: no PEM certificate in it (expected {_CERTIFICATE})")
    try:
        ssl.create_default_context().load_verify_locations(cadata=text)
    except (ssl.SSLError, ValueError):
        raise ValueError(f"{path}: not a valid PEM certificate") from None


def check_client_certificate(cert: Path) -> None:
    """``ValueError`` unless ``cert`` is a readable PEM file holding a certificate."""
    if _CERTIFICATE not in read_pem(cert):
        raise ValueError(f"{cert}: no PEM certificate in it (expected {_CERTIFICATE})")


def check_client_key(key: Path) -> None:
    """``ValueError`` unless ``key`` is a readable PEM file holding an unencrypted private key."""
    text = read_pem(key)
    if "PRIVATE KEY-----" not in text:
        raise ValueError(f"{key}: no PEM private key in it (expected -----BEGIN ... PRIVATE KEY-----)")
    if "ENCRYPTED" in text:
        raise ValueError(f"{key}: the private key is encrypted; give it unencrypted (keep the file itself secret)")


def check_key_pair(cert: Path, key: Path | None) -> None:
    """``ValueError`` unless the certificate and key (or the key inside ``cert``) load together."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_cert_chain(str(cert), str(key) if key is not None else None, password=_refuse_password)
    except _NoPassword:
        raise ValueError(f"{key or cert}: the private key is encrypted; give it unencrypted") from None
    except (ssl.SSLError, OSError, ValueError):
        where = f"{cert} and {key}" if key is not None else f"{cert} (no key given, so it must hold the key too)"
        raise ValueError(f"{where}: not a certificate and the private key that belongs to it") from None
