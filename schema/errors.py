"""Error types shared by activities, the interpreter and the API.

ErrorType values travel as ``ApplicationError.type`` so the Temporal UI, the mirror
and API responses all name failures the same way.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorType(StrEnum):
    """Why a step or run failed."""

    PROVIDER_RATE_LIMITED = "provider_rate_limited"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    PROVIDER_TIMEOUT = "provider_timeout"
    PROVIDER_BAD_REQUEST = "provider_bad_request"
    PROVIDER_AUTH = "provider_auth"
    PROVIDER_NOT_FOUND = "provider_not_found"
    PROVIDER_BAD_RESPONSE = "provider_bad_response"
    PROVIDER_SHORT_CIRCUITED = "provider_short_circuited"
    MISSING_CREDENTIALS = "missing_credentials"
    UNKNOWN_PROVIDER = "unknown_provider"
    OUTPUT_SCHEMA = "output_schema_violation"
    TEMPLATE = "template_error"
    MAPPING = "mapping_error"
    TOOL_FAILED = "tool_failed"
    TOOL_NOT_CONFIGURED = "tool_not_configured"
    TOOL_BAD_INPUT = "tool_bad_input"
    TOOL_FORBIDDEN_TARGET = "tool_forbidden_target"
    UNKNOWN_TOOL = "unknown_tool"
    TRANSFORM = "transform_error"
    AGENT_MAX_TURNS = "agent_max_turns"
    BUDGET_EXCEEDED = "budget_exceeded"
    OUTPUT_TOO_LARGE = "output_too_large"
    TEMPLATE_LIMIT = "template_limit"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    PAYLOAD_INVALID = "payload_invalid"
    INPUT_INVALID = "input_invalid"
    CANCELLED = "cancelled"
    # Set by the reconciler from Temporal's own record of a run ended outside the interpreter.
    TERMINATED = "terminated"
    RUN_TIMED_OUT = "run_timed_out"
    WORKFLOW_FAILED = "workflow_failed"
    WORKFLOW_TASK_FAILED = "workflow_task_failed"
    NOT_STARTED = "not_started"
    INTERNAL = "internal_error"
