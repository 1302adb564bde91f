"""One settings root, built once in an entry point and passed down.

Every value comes from the environment (prefix ``PROMPTPILOT_``, nested with ``__``) or a
``.env`` file; provider keys also come from their standard variables (``OPENAI_API_KEY``...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from promptpilot.llm_settings import (
    BudgetSettings,
    LlmCacheSettings,
    LlmSettings,
)
from promptpilot.security_settings import AuthThrottleSettings, TemporalTlsSettings, with_password
from schema.limits import LimitsSettings


class ToolSettings(BaseModel):
    """Built-in tools."""

    http_allow_private: bool = False
    http_timeout_seconds: float = 30.0
    http_max_response_bytes: int = 1_000_000
    http_max_redirects: int = Field(default=5, ge=0, le=20)
    """Redirect hops http_request follows, each vetted like the first URL; 0: a 3xx is the
    result."""
    web_search_backend: Literal["none", "offline", "searxng", "brave"] = "none"
    web_search_url: str | None = None
    web_search_api_key: SecretStr | None = None


class McpServer(BaseModel):
    """One MCP server: a stdio command (with args and env) or a streamable-HTTP URL."""

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server needs exactly one of 'command' or 'url'")
        return self


class McpSettings(BaseModel):
    """MCP servers whose tools steps may call as ``mcp:<server>`` or ``mcp:<server>/<tool>``."""

    servers: dict[str, McpServer] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Longest one MCP session (start, list or call) may take; over it the call fails
    ``tool_failed``."""


class TemporalSettings(BaseModel):
    """Where the Temporal server is and which queue the worker serves."""

    address: str = "localhost:7233"
    tls: TemporalTlsSettings = Field(default_factory=TemporalTlsSettings)
    namespace: str | None = None
    task_queue: str = "promptpilot"
    max_concurrent_activities: int = Field(default=200, ge=1)
    """Activity slots per worker: bounds the model and tool calls one worker makes at once."""
    max_concurrent_workflow_tasks: int | None = Field(default=None, ge=2)
    """Workflow task slots per worker; None: the SDK's default."""
    max_concurrent_local_activities: int = Field(default=200, ge=1)
    """Local activity slots per worker (the mirror writes, transforms, estimates, lookups)."""
    max_cached_workflows: int = Field(default=1000, ge=0)
    """Runs a worker keeps in memory between their tasks; a run past it is evicted and
    replayed from its history at its next task (more CPU, less memory). 0: none kept."""
    ui_url: str = "http://localhost:8233"
    # Environments this process's worker serves, one Worker per namespace; empty means only
    # the settings' own environment (a production worker serves exactly one).
    worker_environments: list[str] = Field(default_factory=list)
    # Run the interpreter inside Temporal's workflow sandbox, which re-imports the workflow
    # modules for every run and refuses non-deterministic calls (datetime.now, random, I/O).
    # Users never write workflow code here, and CI replays every history in the sandbox, so
    # the worker runs without it by default: about a third less worker CPU per run.
    workflow_sandbox: bool = False
    # Worker Versioning: runs are pinned to the build they started on (README: Upgrading the
    # interpreter). No build id means one derived from the version and the interpreter's code.
    deployment_name: str = Field(default="promptpilot", pattern=r"^[^.]+$")
    build_id: str | None = None
    # Make this worker's build current at its start even when another one is (`promptpilot
    # dev`: one process, so its restart after a code change is the upgrade).
    start_as_current: bool = False


class DatabaseSettings(BaseModel):
    """Postgres; with no URL, ``promptpilot dev`` starts an embedded PostgreSQL."""

    url: str | None = None
    pool_size: int = 10
    password_file: Path | None = None
    """A file holding the database password (a compose or Kubernetes secret), put into the
    URL at start, so the URL in the environment carries none."""

    @model_validator(mode="after")
    def _password(self) -> DatabaseSettings:
        if self.password_file is not None and self.url:
            self.url = with_password(self.url, self.password_file.read_text().strip())
        return self


class ApiSettings(BaseModel):
    """The HTTP front door."""

    host: str = "127.0.0.1"
    port: int = 8000
    run_wait_seconds: float = 30.0
    run_wait_check_seconds: float = Field(default=2.0, gt=0, le=60)
    """A request waiting for its run (``?wait``) reads the run again this often besides the
    notification of its final row: a start to make again, a run ended outside the
    interpreter."""
    dev_api_key: SecretStr | None = None
    auth_throttle: AuthThrottleSettings = Field(default_factory=AuthThrottleSettings)
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    """The URL users reach the API and inspector at; https makes the session cookies Secure."""
    ui_session_seconds: int = Field(default=8 * 3600, ge=60, le=30 * 86_400)
    """How long an inspector sign-in lasts (revoking its key ends it sooner)."""


class ReconcileSettings(BaseModel):
    """How the mirror is brought back into agreement with Temporal (README: Watch, list and
    cancel runs): runs ended outside the interpreter, stalled runs, cancel's grace period."""

    enabled: bool = True
    """Run the reconciler loop in every worker process (``promptpilot worker`` and ``dev``)."""
    interval_seconds: float = Field(default=2.0, gt=0, le=3600)
    """How often a sweep compares recently closed and stalled runs with the mirror."""
    visibility_lag_seconds: float = Field(default=10.0, ge=0, le=3600)
    """Each sweep reads closes again from this long before the previous sweep: Temporal's
    visibility store is eventually consistent, so a close may be listed late."""
    read_check_seconds: float = Field(default=3.0, ge=0, le=3600)
    """``GET`` of a run that is not finished and older than this checks Temporal (at most once
    per this period per run)."""
    cancel_grace_seconds: float = Field(default=10.0, ge=0, le=300)
    """How long a cancelled run may take to stop before it is terminated."""
    schedule_seconds: float = Field(default=60.0, gt=0, le=86_400)
    """How often the API checks that every scheduled trigger has its Temporal schedule, and
    makes one that is gone (deleted in the Temporal UI) again from the trigger."""
    orphan_after_seconds: float = Field(default=60.0, ge=5)
    """A ``pending`` run with no workflow in Temporal after this long is marked failed."""


class DispatchSettings(BaseModel):
    """How runs accepted by the API reach Temporal (README: How it runs): the start
    dispatcher in every API process (and worker, ``in_worker``) starts ``pending`` runs."""

    in_worker: bool = True
    """Run a dispatcher in worker processes too, so starts left by a stopped API go out."""
    worker_after_seconds: float = Field(default=1.0, ge=0, le=3600)
    """A worker's dispatcher takes only starts queued at least this long ago: fresh ones are
    their API's (started at once there, or by the request that waits for the run)."""
    batch_size: int = Field(default=32, ge=1, le=1000)
    """Most starts one dispatcher has in flight at once (it claims more as they finish)."""
    poll_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often a dispatcher looks for due starts when nothing woke it."""
    backoff_initial_seconds: float = Field(default=0.5, gt=0, le=60)
    """The wait before a failed start is tried again; doubles with each failure..."""
    backoff_max_seconds: float = Field(default=5.0, gt=0, le=600)
    """...up to this, while Temporal is unreachable."""
    start_timeout_seconds: float = Field(default=5.0, gt=0, le=120)
    """One StartWorkflowExecution call may take this long before it counts as failed."""
    lease_seconds: float = Field(default=30.0, ge=1, le=3600)
    """A claimed start is skipped by other dispatchers this long (then taken over)."""


class PayloadSettings(BaseModel):
    """What reaches Temporal: encrypted payloads, and large ones kept outside its history
    (README: Payloads: storage and encryption)."""

    encryption_keys: dict[str, SecretStr] = Field(default_factory=dict)
    """The key ring: key id -> 32 random bytes, base64. Keep old ids: they decrypt what they
    encrypted. Empty (and no key file): payloads are not encrypted (refused outside dev)."""
    encryption_key_id: str | None = None
    """The key that encrypts new payloads; default: the ring's only key."""
    key_file: Path | None = None
    """A JSON key ring ``{"id": "base64"}`` read at start and merged into the ring
    (``promptpilot dev`` makes one in its data folder)."""
    storage: Literal["postgres", "s3", "none"] = "postgres"
    """Where payloads at or over the threshold go: our Postgres, an S3 bucket, or nowhere
    (then every payload stays in history and ``limits.max_payload_bytes`` applies)."""
    storage_threshold_bytes: int = Field(default=64 * 1024, ge=0)
    """Payloads at or over this size leave history; history keeps a reference (~200 B)."""
    max_stored_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest payload the storage takes; over it the step or run fails ``payload_too_large``."""
    keep_days: int = Field(default=30, ge=1)
    """Stored payloads older than this are pruned (``promptpilot payloads prune``): keep it
    over the namespace's retention plus the longest run."""
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    """An S3-compatible server (MinIO, moto...); empty: AWS."""
    s3_region: str | None = None
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    codec_cors_origins: list[str] = Field(default_factory=list)
    """Browser origins allowed to call the codec endpoint; default: ``temporal.ui_url``'s."""
    allow_plaintext: bool = False
    """Run an environment other than dev without encryption keys (not recommended)."""

    @model_validator(mode="after")
    def _checks(self) -> PayloadSettings:
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("payloads.storage is s3 but payloads.s3_bucket is not set")
        if self.encryption_key_id is not None and self.key_file is None \
                and self.encryption_key_id not in self.encryption_keys:
            raise ValueError(f"payloads.encryption_key_id {self.encryption_key_id!r} is not in"
                             " payloads.encryption_keys")
        return self


class MetricsSettings(BaseModel):
    """Prometheus metrics (README: Metrics and logs)."""

    public: bool = False
    """Serve the API's ``/metrics`` to anyone; off, only to localhost or an API key."""
    worker_port: int | None = Field(default=None, ge=1, le=65535)
    """Each worker process serves its metrics on this port (``/metrics``); None: not at all."""
    temporal_sdk_port: int | None = Field(default=None, ge=1, le=65535)
    """The Temporal SDK's own metrics (slots, polls, task latencies) on this port."""


class TracingSettings(BaseModel):
    """OpenTelemetry traces (README: Traces); on when an OTLP endpoint is set."""

    capture_content: bool = False
    """Put prompts and model outputs on the LLM spans (``gen_ai.input.messages`` etc.)."""
    ui_url: str | None = None
    """The inspector links a run's trace here, e.g. ``http://localhost:16686/trace/{trace_id}``."""


class WorkflowFeatures(BaseModel):
    """Feature flags of the workflow engine, e.g. PROMPTPILOT_WORKFLOW__MULTI_MODEL."""

    multi_model: bool = False
    """`models` + `mode` on llm steps (`workflow.multiModel`); off: 422 at save."""


class Settings(BaseSettings):
    """The settings root."""

    model_config = SettingsConfigDict(
        env_prefix="PROMPTPILOT_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )
    environment: str = Field(default="dev", pattern=r"^[a-z][a-z0-9-]{0,31}$")
    data_dir: Path = Path("var")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    llm: LlmSettings = Field(default_factory=LlmSettings)
    budgets: BudgetSettings = Field(default_factory=BudgetSettings)
    llm_cache: LlmCacheSettings = Field(default_factory=LlmCacheSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    tools: ToolSettings = Field(default_factory=ToolSettings)
    mcp: McpSettings = Field(default_factory=McpSettings)
    workflow: WorkflowFeatures = Field(default_factory=WorkflowFeatures)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    payloads: PayloadSettings = Field(default_factory=PayloadSettings)
    reconcile: ReconcileSettings = Field(default_factory=ReconcileSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)

    @model_validator(mode="after")
    def _checks(self) -> Settings:
        if self.database_url and not self.database.url:
            self.database.url = self.database_url
            if self.database.password_file is not None:
                self.database = DatabaseSettings.model_validate(self.database.model_dump())
        key = self.api.dev_api_key
        if key is not None and self.environment != "dev" and key.get_secret_value() in {
            "changethis", "dev", "pp_dev_key"
        }:
            raise ValueError("refusing a placeholder API key outside the dev environment")
        return self

    @property
    def max_payload_bytes(self) -> int:
        """The largest payload a run may hand Temporal: the storage's own maximum once
        payloads over the threshold leave history, else ``limits.max_payload_bytes``."""
        if self.payloads.storage == "none":
            return self.limits.max_payload_bytes
        # Room for the encryption envelope, so the guard fires before the storage refuses.
        return self.payloads.max_stored_bytes - 1024

    @property
    def namespace(self) -> str:
        """The Temporal namespace of this environment."""
        return self.temporal.namespace or self.environment

    def namespace_for(self, environment: str) -> str:
        """The namespace of any environment: its own name, unless it is this one's."""
        return self.namespace if environment == self.environment else environment

    @property
    def served_environments(self) -> list[str]:
        """The environments a worker of these settings serves."""
        return list(dict.fromkeys(self.temporal.worker_environments or [self.environment]))
