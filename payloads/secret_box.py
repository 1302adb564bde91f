"""Short secrets kept at rest (webhook secrets) sealed with the payload codec's key ring.

No second cipher: a secret becomes a payload whose data is its UTF-8 text, encrypted by
``EncryptionCodec`` exactly as a Temporal payload is (AES-256-GCM under the ring's active
key, its key id inside), and is stored as ``enc1:`` + base64 of that payload. Key rotation
works as for payloads: keep old ids in the ring. Text without the prefix is read as it is,
so rows written before sealing (or while no key ring was configured) keep working, and
the webhook route seals them on their first verified delivery.
"""

from __future__ import annotations

import base64
import binascii

from temporalio.api.common.v1 import Payload

from payloads.codec import EncryptionCodec, PayloadDecryptError

SEALED_PREFIX = "enc1:"


class SecretBox:
    """Seals and opens short secrets; with no codec (dev without keys) it keeps them as given."""

    def __init__(self, codec: EncryptionCodec | None) -> None:
        self._codec = codec

    def seal(self, text: str) -> str:
        """The at-rest form of ``text`` (unchanged when already sealed or without keys)."""
        if self._codec is None or text.startswith(SEALED_PREFIX):
            return text
        sealed = self._codec.encrypt(Payload(data=text.encode()))
        encoded = base64.b64encode(sealed.SerializeToString(deterministic=True)).decode()
        return SEALED_PREFIX + encoded

    def open(self, stored: str) -> str:
        """The secret itself; PayloadDecryptError when its key is gone or it was altered."""
        if not stored.startswith(SEALED_PREFIX):
            return stored
        if self._codec is None:
            raise PayloadDecryptError("a sealed secret, and no payload key ring to open it")
        payload = Payload()
        try:
            payload.ParseFromString(base64.b64decode(stored[len(SEALED_PREFIX):], validate=True))
        except (binascii.Error, ValueError):
            raise PayloadDecryptError("a sealed secret that is not base64 of a payload") from None
        return self._codec.decrypt(payload).data.decode()

    @staticmethod
    def sealed(stored: str) -> bool:
        """Whether ``stored`` is in sealed form."""
        return stored.startswith(SEALED_PREFIX)
