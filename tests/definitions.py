"""Definitions the tests share: seed 000's feed-discovery against the fake OpenAI server."""

from __future__ import annotations

import copy
from typing import Any

from devstack.examples import example_definitions


def feed_discovery(slug: str, *, provider: str | None = "openai") -> dict[str, Any]:
    """The packaged example, renamed, with its llm step on a real provider (the fake server)."""
    definition = copy.deepcopy(next(d for d in example_definitions()
                                    if d["id"] == "feed-discovery"))
    definition["id"] = slug
    step = definition["steps"][0]
    if provider is None:
        step.pop("provider", None)
    else:
        step["provider"] = provider
    return definition


def chain(slug: str, steps: int, *, model: str = "gpt-4o-mini") -> dict[str, Any]:
    """An llm chain: each step answers with text built from the previous one."""
    body: list[dict[str, Any]] = []
    for index in range(1, steps + 1):
        mapping = {"topic": "input.topic"} if index == 1 else {"prev": f"outputs.s{index - 1}"}
        prompt = "Start on {{topic}}" if index == 1 else f"Step {index}: continue {{{{prev}}}}"
        body.append({"id": f"s{index}", "type": "llm", "model": model,
                     "promptUser": prompt, "inputMapping": mapping})
    return {"id": slug, "name": f"chain of {steps}",
            "variables": [{"name": "topic", "type": "string", "required": True,
                           "sampleValue": "durable execution"}],
            "steps": body}
