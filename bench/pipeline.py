"""B4: the 5-step pipeline users run — an llm step with an output schema → ``web_search`` →
a transform → an llm step → a transform — as our definition, and written by hand as a Temporal
workflow (the model calls and the search as regular activities on the same openai SDK, the
transforms inline in workflow code).

Both call the same model server (``bench/model_server.py``) through the same lane: ``fast``
answers at once, ``slow`` after its latency. The search is the ``offline`` backend's work.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, cast

import jmespath
from temporalio import activity, workflow

MODEL = "gpt-4o-mini"
QUERY_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["query"],
    "properties": {"query": {"type": "string"}, "angle": {"type": "string"}}}
PLAN_PROMPT = "Plan one web search about {{topic}}. Answer as JSON."
WRITE_PROMPT = "Write two sentences about {{topic}} from this result: {{first}}"
PICK = "{titles: results[].title, first: results[0].snippet}"
SHAPE = "{summary: text, sources: titles}"


def definition(slug: str, lane: str) -> dict[str, Any]:
    """The pipeline as a definition, its model calls on the compatible provider ``lane``."""
    llm = {"type": "llm", "provider": lane, "model": MODEL}
    return {
        "id": slug, "name": f"bench pipeline ({lane})",
        "variables": [{"name": "topic", "type": "string", "required": True}],
        "steps": [
            {**llm, "id": "plan", "promptUser": PLAN_PROMPT,
             "inputMapping": {"topic": "input.topic"}, "outputSchema": QUERY_SCHEMA},
            {"id": "search", "type": "tool", "toolName": "web_search", "args": {"limit": 3},
             "inputMapping": {"query": "outputs.plan.query"}},
            {"id": "pick", "type": "transform", "expression": PICK,
             "inputMapping": {"results": "outputs.search.results"}},
            {**llm, "id": "write", "promptUser": WRITE_PROMPT,
             "inputMapping": {"topic": "input.topic", "first": "outputs.pick.first"}},
            {"id": "shape", "type": "transform", "expression": SHAPE,
             "inputMapping": {"text": "outputs.write", "titles": "outputs.pick.titles"}},
        ],
    }


def render(template: str, values: dict[str, Any]) -> str:
    """The hand-written workflow's prompt rendering (plain replacement)."""
    for key, value in values.items():
        template = template.replace("{{" + key + "}}", str(value))
    return template


_clients: dict[str, Any] = {}


def configure(base_urls: dict[str, str]) -> None:
    """One ``AsyncOpenAI`` per lane for this process's hand-written activities."""
    import openai

    for lane, url in base_urls.items():
        _clients[lane] = openai.AsyncOpenAI(api_key="sk-bench", base_url=url, max_retries=0,
                                            timeout=120)


@activity.defn(name="bench_llm")
async def llm_call(lane: str, prompt: str, schema: dict[str, Any] | None) -> Any:
    """One chat completion; with a schema, the answer parsed as JSON."""
    params: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    if schema is not None:
        params["response_format"] = {"type": "json_schema", "json_schema": {
            "name": "output", "schema": schema, "strict": False}}
    response = await _clients[lane].chat.completions.create(**params)
    text = response.choices[0].message.content or ""
    return json.loads(text) if schema is not None else text


@activity.defn(name="bench_search")
async def search(query: str, limit: int) -> dict[str, Any]:
    """The offline web_search backend's results."""
    from activities.tools.search_backends import offline

    return {"query": query, "results": await offline(query, limit, cast(Any, None))}


@workflow.defn(name="BenchPipeline")
class HandWrittenPipeline:
    """The pipeline by hand: activities for the model and the search, transforms inline."""

    @workflow.run
    async def run(self, lane: str, topic: str) -> dict[str, Any]:
        """The five steps."""
        timeout = timedelta(seconds=120)
        plan = await workflow.execute_activity(
            llm_call, args=[lane, render(PLAN_PROMPT, {"topic": topic}), QUERY_SCHEMA],
            start_to_close_timeout=timeout)
        found = await workflow.execute_activity(search, args=[plan["query"], 3],
                                                start_to_close_timeout=timeout)
        picked = jmespath.search(PICK, {"results": found["results"]})
        text = await workflow.execute_activity(
            llm_call, args=[lane, render(WRITE_PROMPT, {"topic": topic,
                                                        "first": picked["first"]}), None],
            start_to_close_timeout=timeout)
        shaped: dict[str, Any] = jmespath.search(SHAPE, {"text": text,
                                                         "titles": picked["titles"]})
        return shaped
