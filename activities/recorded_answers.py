"""Recorded model answers: every answered llm call and agent turn is kept, keyed by what
determines its answer (provider, model, the rendered messages or the agent's conversation so
far, tools, output schema, temperature, max tokens, repairs), and the ``llm_recorded`` and
``agent_turn_recorded`` local activities answer an identical call from the record when the run
says ``llmCache: use``: no model call, cost 0, pointing at the call the answer came from."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity

from activities.providers import registry
from promptpilot.llm_settings import LlmCacheSettings
from schema.activities import (
    AGENT_RECORDED_ACTIVITY,
    LLM_RECORDED_ACTIVITY,
    AgentTurnRequest,
    AgentTurnResult,
    LlmRequest,
    LlmResult,
    RecordedCall,
    RecordedTurn,
    RecordLookup,
    TurnLookup,
)
from store.llm_answers import LlmAnswers, RecordedAnswer

log = logging.getLogger("promptpilot.llm")
PRUNE_EVERY = 500
"""Each worker drops answers past the retention on its first recording and every 500th."""


def _hashed(determined: dict[str, Any]) -> str:
    canonical = json.dumps(determined, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode(errors="surrogatepass")).hexdigest()


def answer_key(request: LlmRequest) -> str:
    """What determines a call's answer, hashed: equal keys, interchangeable answers."""
    provider, model = registry.resolve_model(request.model, request.provider or None)
    return _hashed({"provider": provider, "model": model, "system": request.system,
                    "user": request.user, "outputSchema": request.output_schema,
                    "temperature": request.temperature, "maxTokens": request.max_tokens,
                    "repairAttempts": request.repair_attempts})


def turn_key(request: AgentTurnRequest) -> str:
    """What determines an agent turn's answer, hashed: the model, the whole conversation so
    far (tool calls and results included), the tools offered and the answer's settings."""
    provider, model = registry.resolve_model(request.model, request.provider or None)
    return _hashed({"kind": "agent_turn", "provider": provider, "model": model,
                    "system": request.system,
                    "messages": [m.model_dump(mode="json") for m in request.messages],
                    "tools": [t.model_dump(mode="json") for t in request.tools],
                    "outputSchema": request.output_schema,
                    "temperature": request.temperature, "maxTokens": request.max_tokens,
                    "repairAttempts": request.repair_attempts})


class RecordedAnswers:
    """Looks calls up in, and records answers into, the environment's recorded answers."""

    def __init__(self, answers: LlmAnswers | None, settings: LlmCacheSettings) -> None:
        self.answers, self.settings = answers, settings
        self._recorded = 0

    @activity.defn(name=LLM_RECORDED_ACTIVITY)
    async def lookup(self, request: LlmRequest) -> RecordLookup:
        """The recorded answer of an identical call within the retention, if any."""
        found = await self._find(request.environment, answer_key(request))
        if found is None:
            return RecordLookup()
        result = LlmResult.model_validate(found.result)
        return RecordLookup(call=RecordedCall(result=result, run_id=found.run_id,
                                              step_id=found.step_id,
                                              recorded_at=found.recorded_at))

    @activity.defn(name=AGENT_RECORDED_ACTIVITY)
    async def lookup_turn(self, request: AgentTurnRequest) -> TurnLookup:
        """The recorded answer of an identical agent turn within the retention, if any."""
        found = await self._find(request.environment, turn_key(request))
        if found is None:
            return TurnLookup()
        return TurnLookup(turn=RecordedTurn(result=AgentTurnResult.model_validate(found.result),
                                            run_id=found.run_id, step_id=found.step_id,
                                            recorded_at=found.recorded_at))

    async def _find(self, environment: str | None, key: str) -> RecordedAnswer | None:
        """The latest answer recorded under ``key`` within the retention, or None."""
        if self.answers is None or environment is None:
            return None
        since = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        return await self.answers.find(environment, key, since)

    async def record_turn(self, request: AgentTurnRequest, result: AgentTurnResult) -> None:
        """Keep an agent turn's answer (best effort, as ``record``)."""
        if request.environment is not None:
            await self._keep(request.environment, turn_key(request), result.model_dump_json(),
                             request.run_id, request.step_id)

    async def record(self, request: LlmRequest, result: LlmResult) -> None:
        """Keep a call's answer; a failure to record costs the call nothing (logged)."""
        if request.environment is None:
            return
        kept = result.model_copy(update={"attempt_log": [], "repairs": []})
        await self._keep(request.environment, answer_key(request), kept.model_dump_json(),
                         request.run_id, request.step_id)

    async def _keep(self, environment: str, key: str, result: str, run_id: str,
                    step_id: str) -> None:
        if self.answers is None:
            return
        try:
            await self.answers.record(environment, key, result, run_id, step_id)
            self._recorded += 1
            if self._recorded % PRUNE_EVERY == 1:  # the first, then every PRUNE_EVERY-th
                await self.answers.prune(timedelta(days=self.settings.retention_days),
                                         datetime.now(UTC))
        except Exception as exc:  # best effort: the answer was given, the record is a bonus
            log.warning("llm step %s of run %s: its answer was not recorded (%s)",
                        step_id, run_id, type(exc).__name__)
