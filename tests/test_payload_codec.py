"""The payload codec: AES-256-GCM with key ids, rotation, and loud failures."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from payloads.codec import (
    ENCODING,
    KEY_ID,
    EncryptionCodec,
    KeyRing,
    KeyRingError,
    PayloadDecryptError,
    ensure_key_file,
    new_key,
)
from promptpilot.settings import PayloadSettings, Settings
from promptpilot.temporal import data_converter, key_ring
from schema.run import StepError

K1, K2 = new_key(), new_key()


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_round_trip_hides_data_and_encoding_and_names_the_key() -> None:
    codec = EncryptionCodec(KeyRing.parse({"k1": K1}, None))
    [sealed] = await codec.encode([plain("customer secret")])
    assert sealed.metadata["encoding"] == ENCODING
    assert sealed.metadata[KEY_ID] == b"k1"
    assert b"customer secret" not in sealed.SerializeToString()
    assert b"json/plain" not in sealed.SerializeToString()
    assert await codec.decode([sealed]) == [plain("customer secret")]


async def test_same_payload_same_key_gives_the_same_ciphertext_so_storage_dedupes() -> None:
    codec = EncryptionCodec(KeyRing.parse({"k1": K1}, None))
    first, second, other = await codec.encode([plain("a"), plain("a"), plain("b")])
    assert first == second
    assert first.data[:12] != other.data[:12]  # distinct plaintexts, distinct nonces


async def test_rotation_new_key_encrypts_old_key_still_decrypts() -> None:
    old = EncryptionCodec(KeyRing.parse({"k1": K1}, None))
    [before] = await old.encode([plain("written under k1")])
    rotated = EncryptionCodec(KeyRing.parse({"k1": K1, "k2": K2}, "k2"))
    [after] = await rotated.encode([plain("written under k2")])
    assert after.metadata[KEY_ID] == b"k2"
    assert await rotated.decode([before, after]) == [plain("written under k1"),
                                                     plain("written under k2")]
    with pytest.raises(PayloadDecryptError, match="key 'k2', which is not in the key ring"):
        await old.decode([after])


@pytest.mark.parametrize("where", ["nonce", "ciphertext", "tag", "key id", "truncated"])
async def test_tampered_ciphertext_fails_loudly(where: str) -> None:
    codec = EncryptionCodec(KeyRing.parse({"k1": K1, "k2": K2}, "k1"))
    [sealed] = await codec.encode([plain("do not alter me")])
    data = bytearray(sealed.data)
    if where == "nonce":
        data[0] ^= 1
    elif where == "ciphertext":
        data[20] ^= 1
    elif where == "tag":
        data[-1] ^= 1
    elif where == "key id":
        sealed.metadata[KEY_ID] = b"k2"  # right format, wrong key: authentication fails
    else:
        data = data[:20]
    sealed.data = bytes(data)
    with pytest.raises(PayloadDecryptError, match=r"altered|truncated"):
        await codec.decode([sealed])


async def test_unencrypted_payloads_pass_through_so_older_runs_still_read() -> None:
    codec = EncryptionCodec(KeyRing.parse({"k1": K1}, None))
    assert await codec.decode([plain("from before encryption")]) == [
        plain("from before encryption")]


async def test_failure_messages_are_encrypted_too() -> None:
    settings = Settings(_env_file=None, payloads=PayloadSettings(
        encryption_keys={"k1": SecretStr(K1)}, storage="none"))
    converter = data_converter(settings)
    failure = Failure()
    await converter.encode_failure(ApplicationError("mapping failed on 'customer secret'",
                                                    StepError(type="x", message="m")), failure)
    assert b"customer secret" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "mapping failed on 'customer secret'"


def test_key_ring_settings_are_checked() -> None:
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing.parse({"k1": base64.b64encode(b"short").decode()}, None)
    with pytest.raises(KeyRingError, match="not base64"):
        KeyRing.parse({"k1": "***"}, None)
    with pytest.raises(KeyRingError, match="must name the key that encrypts"):
        KeyRing.parse({"k1": K1, "k2": K2}, None)
    with pytest.raises(KeyRingError, match="must match"):
        KeyRing.parse({"k 1": K1}, None)
    with pytest.raises(ValueError, match=r"not in payloads\.encryption_keys"):
        PayloadSettings(encryption_keys={"k1": SecretStr(K1)}, encryption_key_id="k9")


def test_an_environment_other_than_dev_refuses_readable_payloads() -> None:
    prod = Settings(_env_file=None, environment="prod", payloads=PayloadSettings(storage="none"))
    with pytest.raises(KeyRingError, match="refusing to run the 'prod' environment"):
        key_ring(prod)
    prod.payloads.allow_plaintext = True
    assert key_ring(prod) is None


def test_dev_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    path = ensure_key_file(tmp_path / "var" / "payload-keys.json")
    first = path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert ensure_key_file(path).read_text() == first  # kept: restarts read older runs
    settings = Settings(_env_file=None, payloads=PayloadSettings(key_file=path))
    ring = key_ring(settings)
    assert ring is not None
    assert ring.key_ids == ["dev-1"]
    assert K1 not in repr(settings)
    assert K1 not in repr(Settings(
        _env_file=None, payloads=PayloadSettings(encryption_keys={"k1": SecretStr(K1)})))
