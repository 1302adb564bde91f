"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign and verify.

Headers: ``webhook-id`` (unique per message), ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` entries over
``"{id}.{timestamp}.{raw body}"``, keyed by the base64-decoded part of the ``whsec_`` secret.

The timestamp must be written as canonical Unix seconds (ASCII digits, no sign, no leading
zero, no spaces): the signature covers the header as sent, and ``int()`` would read ``+<ts>``,
``0<ts>``, `` <ts>`` or ``1_7...`` as the same number, so one signature would pass under
several spellings.

HMAC verification needs the key itself (a digest cannot verify), so the secret is kept
server-side, sealed with the payload key ring (``payloads.secret_box``). It is shown once,
never returned again, never logged and never put in a Temporal payload.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60
_CANONICAL_SECONDS = re.compile(r"(?:0|[1-9][0-9]{0,11})", re.ASCII)


class SignatureInvalid(Exception):
    """A delivery that fails verification; the message is the stored reason."""


def new_secret() -> str:
    """A fresh per-trigger secret: ``whsec_`` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    message = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(secret: str, headers: Mapping[str, str], body: bytes, *,
           now: float | None = None, tolerance: int = TOLERANCE_SECONDS) -> str:
    """Check one delivery; returns its webhook id or raises SignatureInvalid with the reason."""
    webhook_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    if not webhook_id or not stamp or not header:
        raise SignatureInvalid("missing webhook-id, webhook-timestamp or webhook-signature")
    if not _CANONICAL_SECONDS.fullmatch(stamp):
        raise SignatureInvalid("webhook-timestamp is not Unix seconds written as plain digits")
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise SignatureInvalid("timestamp too old")
    if timestamp > current + tolerance:
        raise SignatureInvalid("timestamp too far in the future")
    expected = sign(secret, webhook_id, timestamp, body).encode()
    candidates = [entry for entry in header.split(" ") if entry]
    if not any(entry.startswith("v1,") and _decodes(entry[3:]) for entry in candidates):
        raise SignatureInvalid("malformed webhook-signature: expected 'v1,<base64>'")
    # Every candidate is compared in constant time; none short-circuits on a prefix.
    matched = False
    for entry in candidates:
        matched |= hmac.compare_digest(entry.encode(), expected)
    if not matched:
        raise SignatureInvalid("signature does not match")
    return webhook_id


def _decodes(value: str) -> bool:
    try:
        return len(base64.b64decode(value, validate=True)) == hashlib.sha256().digest_size
    except (binascii.Error, ValueError):
        return False
