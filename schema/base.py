"""The one base model: snake_case in Python, camelCase on the wire, as the seeds write it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Base for every contract: accepts both spellings, serialises camelCase."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
    )


class RequestBody(CamelModel):
    """Base of HTTP request bodies: types are strict, as the OpenAPI document states them
    (``0`` is not ``false``, ``"1"`` not ``1``); times are ISO 8601 text (``IsoDateTime``)."""

    model_config = ConfigDict(strict=True)
