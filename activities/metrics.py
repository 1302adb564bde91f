"""Prometheus metrics of runs, steps and model calls (``GET /metrics`` on the API, the
worker's metrics port). Model calls are named as the OpenTelemetry GenAI conventions say
(``gen_ai.client.token.usage``, ``gen_ai.client.operation.duration``, in Prometheus form)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from schema.run import TERMINAL_RUN_STATUSES, RunRecord, StepRecord

RUNS_STARTED = Counter("promptpilot_runs_started", "Runs accepted to start.",
                       ["workflow", "trigger"])
RUNS_FINISHED = Counter("promptpilot_runs_finished", "Runs that ended, by how.",
                        ["workflow", "trigger", "status"])
STEP_DURATION = Histogram("promptpilot_step_duration_seconds", "How long steps took, by kind.",
                          ["kind", "status"],
                          buckets=(0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
TOKEN_USAGE = Histogram(
    "gen_ai_client_token_usage", "Tokens of model calls (gen_ai.client.token.usage).",
    ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
     "gen_ai_token_type"],
    buckets=(1, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576))
OPERATION_DURATION = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of model calls (gen_ai.client.operation.duration).",
    ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
COST = Counter("promptpilot_llm_cost_usd", "What model calls cost, as priced.",
               ["gen_ai_provider_name", "gen_ai_request_model"])
RETRIES = Counter("promptpilot_llm_retries", "Model call attempts after the first.",
                  ["gen_ai_provider_name"])
LIMIT_WAIT = Counter("promptpilot_provider_limit_wait_seconds",
                     "Time model calls waited for their provider's limits.",
                     ["gen_ai_provider_name"])


def run_started(workflow: str, trigger: str) -> None:
    """Count a run accepted to start."""
    RUNS_STARTED.labels(workflow, trigger).inc()


def run_finished(record: RunRecord, workflow: str) -> None:
    """Count a run that ended (its final mirror write)."""
    if record.status in TERMINAL_RUN_STATUSES:
        RUNS_FINISHED.labels(workflow, record.trigger, record.status).inc()


def steps_written(records: list[StepRecord] | tuple[StepRecord, ...]) -> None:
    """Observe the duration of each finished step among ``records``."""
    for record in records:
        if record.finished_at is not None and record.started_at is not None \
                and record.status in ("completed", "failed", "cancelled"):
            seconds = (record.finished_at - record.started_at).total_seconds()
            STEP_DURATION.labels(record.type, record.status).observe(max(seconds, 0.0))


def model_call(provider: str, model: str, tokens_in: int, tokens_out: int,
               seconds: float, cost: float | None) -> None:
    """One answered model call: tokens, duration, cost."""
    TOKEN_USAGE.labels("chat", provider, model, "input").observe(tokens_in)
    TOKEN_USAGE.labels("chat", provider, model, "output").observe(tokens_out)
    OPERATION_DURATION.labels("chat", provider, model).observe(seconds)
    if cost:
        COST.labels(provider, model).inc(cost)


def retried(provider: str) -> None:
    """A model call's attempt after the first."""
    RETRIES.labels(provider).inc()


def waited(provider: str, seconds: float) -> None:
    """Time a call waited for its provider's limits."""
    LIMIT_WAIT.labels(provider).inc(seconds)
