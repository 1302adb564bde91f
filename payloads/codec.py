"""AES-256-GCM over every payload, with the encrypting key's id in each payload's metadata.

A payload becomes ``metadata = {encoding: binary/encrypted, encryption-key-id: <id>}`` and
``data = nonce (12 bytes) || ciphertext || tag (16 bytes)`` over the whole original payload
(its metadata too, so its encoding is not readable either). Keys rotate by id: the ring's
active key encrypts, every key in the ring decrypts what it once encrypted.

The nonce is synthetic: HMAC-SHA256 of the plaintext under a key derived for that purpose
(the SIV construction). The same plaintext under the same key gives the same ciphertext,
which is what lets payload storage stay content-addressed: a workflow replayed after a
cache eviction encodes its commands again, and without it every replay would store a fresh
copy of every large payload. What it reveals is only that two payloads are equal. Distinct
plaintexts get distinct nonces unless HMAC-SHA256 truncated to 96 bits collides.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Over this size the cipher work leaves the event loop (a 64 MB payload is ~0.2 s of CPU).
_OFFLOAD_BYTES = 1024 * 1024


class KeyRingError(ValueError):
    """The configured key ring is unusable (bad key, unknown active id, unreadable file)."""


class PayloadDecryptError(ValueError):
    """A payload that does not decrypt: its key is not in the ring, or it was altered."""


class _Key:
    """One key of the ring: the AEAD key and the nonce key, both derived from the secret."""

    def __init__(self, key_id: str, secret: bytes) -> None:
        self.key_id = key_id
        self.aad = key_id.encode()
        self.aead = AESGCM(_derive(secret, b"promptpilot payload aes-256-gcm"))
        self.nonce_key = _derive(secret, b"promptpilot payload synthetic nonce")


def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


class KeyRing:
    """Every key that may decrypt, and the one that encrypts."""

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if active not in keys:
            raise KeyRingError(f"the active payload key {active!r} is not in the key ring")
        self._keys = {key_id: _Key(key_id, secret) for key_id, secret in keys.items()}
        self.active = self._keys[active]

    @property
    def key_ids(self) -> list[str]:
        """The ids in the ring (never the keys)."""
        return sorted(self._keys)

    def get(self, key_id: str) -> _Key:
        """The key with this id, or PayloadDecryptError naming what the ring has."""
        key = self._keys.get(key_id)
        if key is None:
            raise PayloadDecryptError(
                f"payload encrypted with key {key_id!r}, which is not in the key ring"
                f" (it has {', '.join(self.key_ids)}): add it back to decrypt")
        return key

    @classmethod
    def parse(cls, encoded: Mapping[str, str], active: str | None) -> KeyRing:
        """A ring from ``{id: base64 of 32 bytes}``; ``active`` defaults to the only id."""
        keys: dict[str, bytes] = {}
        for key_id, text in encoded.items():
            if not KEY_ID_PATTERN.match(key_id):
                raise KeyRingError(f"payload key id {key_id!r} must match "
                                   f"{KEY_ID_PATTERN.pattern}")
            try:
                secret = base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError):
                raise KeyRingError(f"payload key {key_id!r} is not base64") from None
            if len(secret) != 32:
                raise KeyRingError(f"payload key {key_id!r} must be 32 bytes (AES-256), "
                                   f"it is {len(secret)}")
            keys[key_id] = secret
        if not keys:
            raise KeyRingError("the payload key ring is empty")
        if active is None:
            if len(keys) > 1:
                raise KeyRingError("payloads.encryption_key_id must name the key that "
                                   f"encrypts (the ring has {', '.join(sorted(keys))})")
            active = next(iter(keys))
        return cls(keys, active)


def new_key() -> str:
    """32 random bytes, base64: a fresh AES-256 payload key."""
    return base64.b64encode(os.urandom(32)).decode()


def read_key_file(path: Path) -> dict[str, str]:
    """A key ring file: a JSON object of key id -> base64 key."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise KeyRingError(f"cannot read the payload key file {path}: {exc}") from None
    if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()):
        raise KeyRingError(f"the payload key file {path} must be a JSON object of "
                           "key id -> base64 key")
    return loaded


def ensure_key_file(path: Path, key_id: str = "dev-1") -> Path:
    """The key file at ``path``, made with one fresh key (readable by its owner only) when
    it does not exist yet: ``promptpilot dev`` keeps its key in its data folder."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump({key_id: new_key()}, handle)
    return path


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the ring's active key; decrypts with the key it names.

    Payloads that are not encrypted (written before encryption was configured) pass
    through, so older runs still replay and show; an encrypted one that does not
    authenticate raises PayloadDecryptError, never returns altered bytes.
    """

    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt each payload with the active key."""
        return [await _maybe_offload(self.encrypt, p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt each encrypted payload; pass the others through."""
        return [await _maybe_offload(self.decrypt, p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """One payload, encrypted."""
        key = self.ring.active
        plain = payload.SerializeToString(deterministic=True)
        nonce = hmac.new(key.nonce_key, plain, hashlib.sha256).digest()[:NONCE_BYTES]
        sealed = nonce + key.aead.encrypt(nonce, plain, key.aad)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key.aad}, data=sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """One payload, decrypted (or as it was, when it is not encrypted)."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode("utf-8", "replace")
        key = self.ring.get(key_id)
        data = payload.data
        if len(data) < NONCE_BYTES + 16:
            raise PayloadDecryptError(f"encrypted payload (key {key_id!r}) is truncated")
        try:
            plain = key.aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key.aad)
        except InvalidTag:
            raise PayloadDecryptError(
                f"encrypted payload (key {key_id!r}) failed authentication: it was altered,"
                " or encrypted under another key with the same id") from None
        original = Payload()
        original.ParseFromString(plain)
        return original


async def _maybe_offload(convert: Callable[[Payload], Payload], payload: Payload) -> Payload:
    if payload.ByteSize() >= _OFFLOAD_BYTES:
        return await asyncio.to_thread(convert, payload)
    return convert(payload)
