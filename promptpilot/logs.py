"""Logging as an operator reads it: text by default, or one JSON object per line
(``PROMPTPILOT_LOG_FORMAT=json``) carrying the run id, step id and environment of the work that
logged it; API keys, provider keys and bearer tokens never appear, whatever the format."""

from __future__ import annotations

import logging
import re
import sys
from typing import IO, Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from activities.log_context import current

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Our API keys (pp_...), OpenAI/Anthropic keys (sk-...), and any bearer token.
_SECRET = re.compile(r"\b(pp_[A-Za-z0-9_]{6,}|sk-[A-Za-z0-9_-]{8,})|(Bearer\s+)\S+")


def redact(text: str) -> str:
    """``text`` with anything shaped like a key or a bearer token replaced."""
    return _SECRET.sub(lambda m: f"{m.group(2)}[redacted]" if m.group(2) else "[redacted]",
                       text)


class WorkContext(logging.Filter):
    """Adds run_id, step_id, environment and trace_id to every record, and redacts its
    message (trace_id: the current span's trace when tracing is on, else null)."""

    def filter(self, record: logging.LogRecord) -> bool:
        work = current()
        run_id, step_id, environment = work if work else (None, None, None)
        temporal: dict[str, Any] = (getattr(record, "temporal_activity", None)
                                    or getattr(record, "temporal_workflow", None) or {})
        record.run_id = run_id or temporal.get("workflow_id")
        record.step_id = step_id
        record.environment = environment or temporal.get("namespace")
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else None
        record.msg, record.args = redact(record.getMessage()), None
        return True


def configure(fmt: str = "text", level: str = "INFO", stream: IO[str] | None = None
              ) -> logging.Handler:
    """Install the root handler in ``fmt`` (``text`` or ``json``); returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(run_id)s %(step_id)s "
            "%(environment)s %(trace_id)s", rename_fields={"asctime": "time", "levelname": "level",
                                              "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(WorkContext())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler
