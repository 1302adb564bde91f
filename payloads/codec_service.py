"""What Temporal's codec-server endpoints do, without HTTP: the API serves it at /codec.

The protocol (Temporal's remote codec, storage-aware): ``encode`` runs the payload codec and
then stores payloads over the threshold; ``decode`` retrieves referenced payloads and then
decrypts, or with ``preserve_refs`` (the Temporal UI asks so, to draw history without
fetching every large payload) leaves references as they are; ``download`` resolves
references only (the UI's "download" button on a payload stored externally).
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1.external_storage_pb2 import ExternalStorageReference
from temporalio.converter import (
    JSONProtoPayloadConverter,
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
    StorageDriverWorkflowInfo,
)

from payloads.codec import PayloadDecryptError
from payloads.storage import POSTGRES_DRIVER, PayloadStorageError
from promptpilot.temporal import PayloadPipeline

_REFERENCE_TYPE = ExternalStorageReference.DESCRIPTOR.full_name.encode()
_REFERENCES = JSONProtoPayloadConverter()


class CodecRefused(Exception):
    """A request the codec cannot serve; ``index`` is the payload at fault, if one is."""

    def __init__(self, status: int, code: str, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.index = status, code, message, index


def is_reference(payload: Payload) -> bool:
    """True for an external-storage reference (what history holds for a stored payload)."""
    return (payload.metadata.get("encoding") == b"json/protobuf"
            and payload.metadata.get("messageType") == _REFERENCE_TYPE)


def reference_namespace(reference: ExternalStorageReference) -> str | None:
    """The namespace a stored payload belongs to, read from its claim."""
    claim = reference.claim_data
    if reference.driver_name == POSTGRES_DRIVER:
        return claim.get("namespace")
    parts = claim.get("key", "").split("/")  # the S3 driver's v0/ns/<namespace>/...
    return parts[parts.index("ns") + 1] if "ns" in parts[:-1] else None


class CodecService:
    """Encode, decode and download for one process's payload pipeline."""

    def __init__(self, pipeline: PayloadPipeline) -> None:
        self._pipeline = pipeline

    async def encode(self, payloads: Sequence[Payload], namespace: str) -> list[Payload]:
        """Encrypt, then keep the large ones in storage and return their references."""
        codec, storage = self._pipeline.codec, self._pipeline.storage
        encoded = list(await codec.encode(payloads)) if codec else list(payloads)
        external = storage.external
        driver = storage.active
        if external is None or driver is None:
            return encoded
        context = StorageDriverStoreContext(target=StorageDriverWorkflowInfo(namespace=namespace))
        for index, payload in enumerate(encoded):
            if payload.ByteSize() < external.payload_size_threshold:
                continue
            [claim] = await driver.store(context, [payload])
            reference = _REFERENCES.to_payload(ExternalStorageReference(
                driver_name=driver.name(), claim_data=claim.claim_data))
            assert reference is not None
            reference.external_payloads.add().size_bytes = payload.ByteSize()
            encoded[index] = reference
        return encoded

    async def decode(self, payloads: Sequence[Payload], namespace: str, *,
                     preserve_refs: bool = False) -> list[Payload]:
        """Resolve references (unless ``preserve_refs``), then decrypt."""
        resolved = list(payloads)
        if not preserve_refs:
            for index, payload in enumerate(payloads):
                if is_reference(payload):
                    resolved[index] = await self._retrieve(payload, index, namespace)
        return self._decrypt(resolved)

    async def download(self, payloads: Sequence[Payload], namespace: str) -> list[Payload]:
        """The payloads behind references, decrypted."""
        for index, payload in enumerate(payloads):
            if not is_reference(payload):
                raise CodecRefused(400, "not_a_reference", "download takes external-storage "
                                   "references only", index)
        return await self.decode(payloads, namespace)

    async def _retrieve(self, payload: Payload, index: int, namespace: str) -> Payload:
        try:
            reference = json_format.Parse(payload.data, ExternalStorageReference())
        except json_format.ParseError:
            raise CodecRefused(400, "invalid_reference", "an external-storage reference that "
                               "does not parse", index) from None
        owner = reference_namespace(reference)
        if owner != namespace:
            raise CodecRefused(403, "forbidden", f"this payload belongs to namespace {owner!r},"
                               f" not {namespace!r}", index)
        driver = self._pipeline.storage.driver(reference.driver_name)
        if driver is None:
            raise CodecRefused(422, "unknown_storage_driver", "no storage driver named "
                               f"{reference.driver_name!r} is configured here", index)
        claim = StorageDriverClaim(claim_data=dict(reference.claim_data))
        try:
            [stored] = await driver.retrieve(StorageDriverRetrieveContext(), [claim])
        except PayloadStorageError as exc:
            raise CodecRefused(404, "payload_not_found", str(exc), index) from None
        return stored

    def _decrypt(self, payloads: list[Payload]) -> list[Payload]:
        codec = self._pipeline.codec
        if codec is None:
            return payloads
        decoded = []
        for index, payload in enumerate(payloads):
            try:
                decoded.append(codec.decrypt(payload))
            except PayloadDecryptError as exc:
                raise CodecRefused(422, "payload_not_decryptable", str(exc), index) from None
        return decoded
