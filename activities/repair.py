"""Structured-output repair: re-prompt with the validation errors of the previous answer."""

from __future__ import annotations

from schema.activities import LlmRequest

MAX_ECHOED_CHARS = 4000

REPAIR_INSTRUCTION = (
    "Your previous answer was rejected because it does not satisfy the required JSON Schema.\n"
    "Previous answer:\n{answer}\n\nProblems:\n{problems}\n\n"
    "Answer the original request again. Reply with only the corrected JSON value."
)


def repair_request(original: LlmRequest, answer: str, problems: str) -> LlmRequest:
    """The original request with the rejected answer and its problems appended."""
    instruction = REPAIR_INSTRUCTION.format(answer=answer[:MAX_ECHOED_CHARS], problems=problems)
    return original.model_copy(update={"user": f"{original.user}\n\n{instruction}"})
