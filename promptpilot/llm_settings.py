"""Settings of the model providers: credentials, compatible servers, the limits each provider
takes across all runs, and the daily spend limits (parts of ``promptpilot.settings``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class OpenAISettings(BaseSettings):
    """OpenAI, read from the standard ``OPENAI_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="OPENAI_", extra="ignore")
    api_key: SecretStr | None = None
    base_url: str | None = None


class AnthropicSettings(BaseSettings):
    """Anthropic, read from the standard ``ANTHROPIC_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="ANTHROPIC_", extra="ignore")
    api_key: SecretStr | None = None
    base_url: str | None = None


class CompatibleProvider(BaseModel):
    """Any server speaking the OpenAI chat API: vLLM, Ollama, LM Studio..."""

    base_url: str
    api_key: SecretStr | None = None
    stream: bool = True
    """Stream this server's answers (``llm.stream`` on). Off for a server that refuses
    ``stream`` or ``stream_options`` (older vLLM, some proxies): its answers come whole,
    with the response's token counts, and its steps send no ``delta`` events."""


class ProviderLimits(BaseModel):
    """What one provider (or compatible server) takes, enforced across every run and worker
    (README: Provider limits). Unset: no limit of that kind."""

    requests_per_second: float | None = Field(default=None, gt=0)
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    """Counted at the call's worst case (prompt estimate + ``maxTokens``), before it is made."""
    concurrent: int | None = Field(default=None, gt=0)
    """Calls in flight at once."""


class LlmSettings(BaseModel):
    """Model providers."""

    openai: OpenAISettings = Field(default_factory=OpenAISettings)
    anthropic: AnthropicSettings = Field(default_factory=AnthropicSettings)
    compatible: dict[str, CompatibleProvider] = Field(default_factory=dict)
    limits: dict[str, ProviderLimits] = Field(default_factory=dict)
    """Per provider name (``openai``, ``anthropic``, a compatible server's name)."""
    breaker_failures: int = Field(default=5, ge=1)
    """Failures in a row (5xx, timeouts, connection errors) that short-circuit a provider."""
    breaker_open_seconds: float = Field(default=30.0, gt=0, le=3600)
    """How long a short-circuited provider is not called (every run's calls fail fast)."""
    limit_scope: str = Field(default="", max_length=60)
    """Workers with the same scope share each provider's limits, pauses and breaker (default:
    every worker on this database). Give workers that call with another account another
    scope: their providers' limits are their own."""
    limit_margin_seconds: float = Field(default=0.2, ge=0, le=5)
    """Added to the one-second and one-minute windows, so network jitter between the grant
    and the request cannot put one call too many in the provider's window."""
    request_timeout_seconds: float = 120.0
    stream: bool = True
    """Stream llm and agent answers from OpenAI, compatible servers and Anthropic, sending
    the text to the run's event stream as ``delta`` events while the step runs."""
    stream_interval_ms: float = Field(default=50, ge=0, le=5000)
    """Streamed text is sent at most this often per step (the first piece at once): one
    Postgres NOTIFY per batch however fast the tokens come."""


class BudgetSettings(BaseModel):
    """Daily spend limits (UTC days) held across every run and worker: a model call that could
    pass one is refused ``budget_exceeded`` before it is made (README: Cost and budgets)."""

    environment_daily_usd: float | None = Field(default=None, gt=0)
    """Most one environment may spend on model calls in a day."""
    workflow_daily_usd: dict[str, float] = Field(default_factory=dict)
    """Most each workflow (by slug) may spend in a day; ``default_workflow_daily_usd`` for
    the others."""
    default_workflow_daily_usd: float | None = Field(default=None, gt=0)


class LlmCacheDefaults(BaseModel):
    """Whether runs and previews answer from recorded model calls unless the request says."""

    runs: Literal["use", "off"] = "off"
    previews: Literal["use", "off"] = "use"


class LlmCacheSettings(LlmCacheDefaults):
    """Recorded model answers (README: Recorded model answers): every model call is recorded;
    with ``llmCache: use`` an identical call is answered from the record, cost 0."""

    environments: dict[str, LlmCacheDefaults] = Field(default_factory=dict)
    """Defaults of one environment, over the ones above."""
    retention_days: float = Field(default=30, gt=0)
    """Answers older than this are not used, and are pruned."""

    def defaults(self, environment: str) -> LlmCacheDefaults:
        """The defaults that apply in ``environment``."""
        return self.environments.get(environment, self)
