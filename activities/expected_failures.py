"""Expected step failures log one line, not a traceback from the SDK and another from us.

A refused target, a spent budget, a bad argument, a provider that refuses the key: each is a
non-retryable ``ApplicationError`` typed with a ``schema.errors.ErrorType``. The SDK logs
every failed activity at WARNING with its traceback unless the error is BENIGN; this worker
interceptor marks the expected ones BENIGN (the SDK then logs them at DEBUG; retries,
metrics and what the workflow sees are unchanged), and the run's end logs the one line
(``log_failed_run``). A bug (``internal_error``, any other exception) keeps its traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from schema.errors import ErrorType
from schema.run import RunRecord

log = logging.getLogger("promptpilot.runs")
_EXPECTED = frozenset(ErrorType) - {ErrorType.INTERNAL}


def is_expected(error: BaseException) -> bool:
    """A non-retryable failure of a known kind: the user's to fix, not a bug."""
    return (isinstance(error, ApplicationError) and error.non_retryable
            and error.type in _EXPECTED)


def benign(error: ApplicationError) -> ApplicationError:
    """The same failure (message, details, type) marked BENIGN."""
    return ApplicationError(error.message, *error.details, type=error.type,
                            non_retryable=error.non_retryable,
                            next_retry_delay=error.next_retry_delay,
                            category=ApplicationErrorCategory.BENIGN)


def log_failed_run(record: RunRecord) -> None:
    """The one line a run that ended `failed` logs (its error as the API shows it)."""
    if record.status != "failed" or record.error is None:
        return
    log.warning("run %s (workflow %s v%s, trigger %s) failed (%s): %s", record.run_id,
                record.workflow_id, record.workflow_version, record.trigger, record.error.type,
                record.error.message)


class ExpectedFailures(Interceptor):
    """Worker interceptor: expected activity failures are raised BENIGN."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        """Wrap every activity of the worker."""
        return _Inbound(next)


class _Inbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await self.next.execute_activity(input)
        except ApplicationError as error:
            if not is_expected(error) or error.category == ApplicationErrorCategory.BENIGN:
                raise
            raise benign(error).with_traceback(error.__traceback__) from error.__cause__
