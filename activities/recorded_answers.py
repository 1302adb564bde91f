"""Recorded model answers: every answered llm call is kept, keyed by what determines its answer
(provider, model, the rendered messages, output schema, temperature, max tokens, repairs), and
the ``llm_recorded`` local activity answers an identical call from the record when the run says
``llmCache: use``: no model call, cost 0, the step pointing at the call the answer came from."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta

from temporalio import activity

from activities.providers import registry
from promptpilot.llm_settings import LlmCacheSettings
from schema.activities import (
    LLM_RECORDED_ACTIVITY,
    LlmRequest,
    LlmResult,
    RecordedCall,
    RecordLookup,
)
from store.llm_answers import LlmAnswers

log = logging.getLogger("promptpilot.llm")
PRUNE_EVERY = 500
"""Each worker drops answers past the retention on its first recording and every 500th."""


def answer_key(request: LlmRequest) -> str:
    """What determines a call's answer, hashed: equal keys, interchangeable answers."""
    provider, model = registry.resolve_model(request.model, request.provider or None)
    determined = {"provider": provider, "model": model, "system": request.system,
                  "user": request.user, "outputSchema": request.output_schema,
                  "temperature": request.temperature, "maxTokens": request.max_tokens,
                  "repairAttempts": request.repair_attempts}
    canonical = json.dumps(determined, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return hashlib.sha256(canonical.encode(errors="surrogatepass")).hexdigest()


class RecordedAnswers:
    """Looks calls up in, and records answers into, the environment's recorded answers."""

    def __init__(self, answers: LlmAnswers | None, settings: LlmCacheSettings) -> None:
        self.answers, self.settings = answers, settings
        self._recorded = 0

    @activity.defn(name=LLM_RECORDED_ACTIVITY)
    async def lookup(self, request: LlmRequest) -> RecordLookup:
        """The recorded answer of an identical call within the retention, if any."""
        if self.answers is None or request.environment is None:
            return RecordLookup()
        since = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        found = await self.answers.find(request.environment, answer_key(request), since)
        if found is None:
            return RecordLookup()
        result = LlmResult.model_validate(found.result)
        return RecordLookup(call=RecordedCall(result=result, run_id=found.run_id,
                                              step_id=found.step_id,
                                              recorded_at=found.recorded_at))

    async def record(self, request: LlmRequest, result: LlmResult) -> None:
        """Keep a call's answer; a failure to record costs the call nothing (logged)."""
        if self.answers is None or request.environment is None:
            return
        kept = result.model_copy(update={"attempt_log": [], "repairs": []})
        try:
            await self.answers.record(request.environment, answer_key(request),
                                      kept.model_dump_json(), request.run_id, request.step_id)
            self._recorded += 1
            if self._recorded % PRUNE_EVERY == 1:  # the first, then every PRUNE_EVERY-th
                await self.answers.prune(timedelta(days=self.settings.retention_days),
                                         datetime.now(UTC))
        except Exception as exc:  # best effort: the answer was given, the record is a bonus
            log.warning("llm step %s of run %s: its answer was not recorded (%s)",
                        request.step_id, request.run_id, type(exc).__name__)
