"""The ``llm_call`` activity: one model call through a registered provider, priced and checked.

One activity attempt is the initial call plus up to ``repairAttempts`` re-prompts when the
answer fails ``outputSchema``, so Temporal's retries stay for infrastructure failures. Every
attempt heartbeats the attempt log (see ``attempt_log``), and the final result or failure
carries it with the tokens and cost spent, repairs listed apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.attempt_log import failed_entry, now, prior_attempts, with_log
from activities.budget import (
    ASSUMED_MAX_OUTPUT_TOKENS,
    DailyBudgets,
    check_budget,
    estimated_prompt_tokens,
    spent_before,
)
from activities.log_context import working_on
from activities.pricing import price
from activities.providers import errors, registry
from activities.providers.completion import Completion, Provider
from activities.providers.limits import ProviderLimiter
from activities.providers.validation import validated_output
from activities.recorded_answers import RecordedAnswers
from activities.repair import repair_request
from activities.self_mirror import SelfMirror, llm_completed
from activities.streaming import Streams
from promptpilot.settings import Settings
from schema.activities import AttemptEntry, LlmRequest, LlmResult, RepairEntry
from schema.errors import ErrorType
from schema.step_output import output_problem
from store.daily_spend import DailySpend
from store.provider_gate import ProviderGate

HEARTBEAT_SECONDS = 2.0
T = TypeVar("T")


async def _heartbeating(call: Awaitable[T], *details: Any) -> T:
    """Await ``call`` while heartbeating, so a lost worker shows within the heartbeat timeout.

    The first beat is after ``HEARTBEAT_SECONDS``: a call that answers sooner sends none (the
    log it would carry is the earlier attempts', already in the heartbeat details)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            activity.heartbeat(*details)

    beating = asyncio.create_task(beat())
    try:
        return await call
    finally:
        beating.cancel()


@dataclass
class _Usage:
    """Everything one activity attempt spent, across its initial call and repairs."""

    tokens_in: int = 0
    tokens_out: int = 0
    cached_tokens: int = 0
    known_cost: float = 0.0
    unpriced: bool = False
    latency_ms: float = 0.0
    queued_ms: float = 0.0
    """Time spent waiting for the provider's limits before calling."""
    warnings: list[str] = field(default_factory=list)

    def add(self, completion: Completion, cost: float | None, latency_ms: float) -> None:
        self.tokens_in += completion.tokens_in
        self.tokens_out += completion.tokens_out
        self.cached_tokens += completion.cached_tokens
        self.known_cost += cost or 0.0
        self.unpriced = self.unpriced or cost is None
        self.latency_ms += latency_ms

    def warn(self, message: str | None) -> None:
        if message and message not in self.warnings:
            self.warnings.append(message)

    @property
    def cost(self) -> float | None:
        # An unknown price makes the total unknown: never a silent zero.
        return None if self.unpriced else self.known_cost

    def as_json(self) -> dict[str, Any]:
        return {"tokensIn": self.tokens_in, "tokensOut": self.tokens_out,
                "cachedTokens": self.cached_tokens, "cost": self.cost,
                "latencyMs": self.latency_ms}


class LlmActivities:
    """LLM activities; SDK clients are built on first use, one per provider, then reused."""

    def __init__(self, settings: Settings, gate: ProviderGate | None = None,
                 daily: DailySpend | None = None,
                 records: RecordedAnswers | None = None,
                 streams: Streams | None = None, mirror: SelfMirror | None = None) -> None:
        self.settings = settings
        self.records = records
        self.mirror = mirror or SelfMirror(None)
        self.streams = streams or Streams(None, enabled=False, interval=0)
        self.limits = ProviderLimiter(gate, settings.llm)
        self.daily = DailyBudgets(daily, settings.budgets)
        self._providers: dict[str, Provider] = {}
        registry.load_builtin()

    def provider(self, name: str) -> Provider:
        """The provider called ``name``, built on first use."""
        if name not in self._providers:
            factory = registry.factory_for(name, self.settings)
            if factory is None:
                raise errors.unknown_provider(name, registry.known_providers(self.settings))
            self._providers[name] = factory(name, self.settings)
        return self._providers[name]

    async def aclose(self) -> None:
        """Close every SDK client built so far (call on worker shutdown)."""
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            await provider.aclose()

    @activity.defn(name="llm_call")
    async def call(self, request: LlmRequest) -> LlmResult:
        """Call the model, repair answers that fail ``outputSchema``, price it, log the attempt."""
        with working_on(request.run_id, request.step_id, request.environment):
            return await self._attempt(request)

    async def _attempt(self, request: LlmRequest) -> LlmResult:
        info = activity.info()
        if info.attempt > 1:
            metrics.retried(request.provider or request.model)
        log = prior_attempts(info.heartbeat_details, info.attempt)
        label = f"{request.provider}/{request.model}" if request.provider else request.model
        started = now()
        await self.mirror.started(request.mirror, info.attempt)
        usage, repairs = _Usage(), list[RepairEntry]()
        try:
            result = await self._call(request, log, usage, repairs)
        except ApplicationError as exc:
            error = exc
        except Exception as exc:  # a bug, not a provider answer: still logged, then retried
            error = ApplicationError(f"{type(exc).__name__}: {exc}", type=ErrorType.INTERNAL)
        else:
            log.append(AttemptEntry(number=info.attempt, status="completed", model=label,
                                    started_at=started, finished_at=now(),
                                    queued_ms=round(usage.queued_ms) or None))
            result.attempt_log = log
            if self.records is not None:
                await self.records.record(request, result)
            if request.mirror is not None:
                result.finished_at = now()
                result.mirrored = await self.mirror.finished(
                    request.mirror, llm_completed(request.mirror, request, result))
            return result
        log.append(failed_entry(error, info.attempt, label, started, usage.known_cost))
        raise with_log(error, info.attempt, log, {
            "usage": usage.as_json(),
            "repairs": [r.model_dump(mode="json") for r in repairs],
        }) from error

    async def _call(self, request: LlmRequest, log: list[AttemptEntry], usage: _Usage,
                    repairs: list[RepairEntry]) -> LlmResult:
        provider_name, model = registry.resolve_model(request.model, request.provider or None)
        if not provider_name:
            known = registry.known_providers(self.settings)
            raise errors.unknown_provider("", known, request.model)
        beat = [e.model_dump(mode="json") for e in log]
        # Earlier attempts of this call were billed too: a retry spends within what is left.
        before = spent_before(provider_name, model, request, log)
        current, reason, output = request, "", None
        for number in range(request.repair_attempts + 1):
            # Before every provider call, repairs included: never spend past the budget.
            usage.warn(check_budget(provider_name, model, current, before + usage.known_cost))
            provider = self.provider(provider_name)
            tokens = (estimated_prompt_tokens(current)
                      + (current.max_tokens or ASSUMED_MAX_OUTPUT_TOKENS))
            async with (
                self.daily.held(provider_name, model, current) as billed,
                self.limits.call(provider_name, tokens, lambda: activity.heartbeat(beat))
                as queued,
            ):
                started = time.monotonic()
                live = self.streams.open(request.run_id, request.step_id,
                                         activity.info().attempt,
                                         **({"repair": number} if number else {}))
                try:
                    completion = await _heartbeating(provider.complete(
                        current, model, live.write if live else None), beat)
                except ApplicationError as exc:
                    if exc.type != ErrorType.PROVIDER_TIMEOUT:
                        billed.append(0.0)  # the provider answered an error: not billed
                    raise
                finally:
                    if live is not None:
                        await live.close()
                latency_ms = (time.monotonic() - started) * 1000
                cost, price_warnings = price(provider_name, model, completion.tokens_in,
                                             completion.tokens_out, completion.cached_tokens,
                                             completion.cache_write_tokens)
                billed.append(cost)
            metrics.model_call(provider_name, model, completion.tokens_in,
                               completion.tokens_out, latency_ms / 1000, cost)
            if queued.reason:
                metrics.waited(provider_name, queued.seconds)
                usage.queued_ms += queued.seconds * 1000
                usage.warn(f"waited {queued.seconds:.1f} s for {provider_name}'s limits "
                           f"({queued.reason})")
            usage.add(completion, cost, latency_ms)
            for warning in price_warnings:
                usage.warn(warning)
            activity.logger.info(
                "llm step %s: %s/%s answered in %.0f ms, tokens in=%d out=%d cached=%d "
                "(attempt %d, repair %d)", request.step_id, provider_name, model, latency_ms,
                completion.tokens_in, completion.tokens_out, completion.cached_tokens,
                activity.info().attempt, number,
            )
            if request.output_schema is None:
                output = completion.text
                break
            try:
                output = validated_output(completion.text, request.output_schema)
            except ApplicationError as violation:
                if number:
                    repairs.append(_repair(number, reason, False, completion, cost, latency_ms))
                if number == request.repair_attempts:
                    raise
                reason = violation.message
                current = repair_request(request, completion.text, violation.message)
                continue
            if number:
                repairs.append(_repair(number, reason, True, completion, cost, latency_ms))
                usage.warn(f"output repaired after {number} repair attempt(s)")
            break
        for warning in usage.warnings:
            activity.logger.warning("llm step %s: %s", request.step_id, warning)
        _check_size(output, self.settings.limits.max_step_output_bytes)
        return LlmResult(
            output=output, text=completion.text, provider=provider_name, model=model,
            tokens_in=usage.tokens_in, tokens_out=usage.tokens_out,
            cached_tokens=usage.cached_tokens, cost=usage.cost, latency_ms=usage.latency_ms,
            attempt=activity.info().attempt, warnings=usage.warnings, repairs=repairs,
        )


def _check_size(output: Any, limit: int) -> None:
    """Refuse (non-retryably) an answer over the step output limit before it travels: the
    same check the interpreter makes of every step's output (``schema.step_output``)."""
    problem = output_problem(output, limit)
    if problem is not None:
        raise ApplicationError(
            f"{problem.message}; lower maxTokens or ask for a shorter answer", problem.details,
            type=problem.type, non_retryable=True)


def _repair(number: int, reason: str, valid: bool, completion: Completion,
            cost: float | None, latency_ms: float) -> RepairEntry:
    return RepairEntry(number=number, reason=reason, valid=valid,
                       tokens_in=completion.tokens_in, tokens_out=completion.tokens_out,
                       cached_tokens=completion.cached_tokens, cost=cost, latency_ms=latency_ms)
