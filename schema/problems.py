"""The shape of a validation problem (where, as a JSON pointer, and what) and the error that
carries every problem found."""

from __future__ import annotations

from schema.base import CamelModel


class Problem(CamelModel):
    """One thing wrong with a request, located by a JSON pointer into its body."""

    pointer: str
    message: str
    step_id: str | None = None
    field: str | None = None


class DefinitionInvalid(Exception):
    """A definition or run input that cannot be accepted; carries every problem found."""

    def __init__(self, problems: list[Problem], message: str = "validation failed") -> None:
        super().__init__(message)
        self.problems = problems


def pointer(*parts: str | int) -> str:
    """A JSON pointer (RFC 6901) from path parts."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "/" + "/".join(escaped) if parts else ""
