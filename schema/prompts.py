"""Bodies of the stored-prompt API (`/api/prompts`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from schema.base import CamelModel, RequestBody
from schema.definition import SLUG_PATTERN

# Postgres text and JSONB cannot hold NUL characters: refuse them up front (422, not 500).
NO_NUL = r"^[^\x00]*$"


class PromptCreate(RequestBody):
    """A new stored prompt; `id` is its slug, the name llm steps use as `promptId`."""

    id: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=NO_NUL)
    description: str | None = Field(default=None, pattern=NO_NUL)
    prompt_system: str | None = Field(default=None, pattern=NO_NUL)
    prompt_user: str = Field(min_length=1, pattern=NO_NUL)


class PromptUpdate(RequestBody):
    """New texts for a stored prompt: stored as a new immutable version."""

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=NO_NUL)
    description: str | None = Field(default=None, pattern=NO_NUL)
    prompt_system: str | None = Field(default=None, pattern=NO_NUL)
    prompt_user: str = Field(min_length=1, pattern=NO_NUL)


class PromptVersionPublic(CamelModel):
    """One immutable version of a prompt."""

    version: int
    prompt_system: str | None = None
    prompt_user: str
    created_at: datetime


class PromptPublic(CamelModel):
    """A stored prompt with its current (or requested) version's texts."""

    id: str
    name: str
    description: str | None = None
    current_version: int
    created_at: datetime
    updated_at: datetime
    version: PromptVersionPublic | None = None


class PromptEnvelope(CamelModel):
    """`{"success": true, "prompt": {...}}`."""

    success: bool = True
    prompt: PromptPublic


class PromptListEnvelope(CamelModel):
    """The prompts of the caller's environment."""

    success: bool = True
    prompts: list[PromptPublic]


class PromptVersionListEnvelope(CamelModel):
    """A prompt's versions, oldest first."""

    success: bool = True
    versions: list[PromptVersionPublic]


class ApprovalRequest(RequestBody):
    """Body of `POST /api/workflows/runs/{runId}/steps/{stepId}/approve` (or `/reject`)."""

    comment: str | None = Field(default=None, max_length=4000, pattern=NO_NUL)
