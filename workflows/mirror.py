"""The one writer of step rows: mirror writes, batching, and the transform's self-write.

Finished steps wait in ``pending`` and travel with the next write (usually the next step's
"running"): one mirror local activity per step instead of two. The run's "running" row
waits in ``pending_run`` for the first write (a transform's own, or the mirror's next).
Deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schema.activities import StepSelfWrite, TransformStepRequest, TransformStepResult
    from schema.definition import TransformStep
    from schema.run import RunRecord, StepRecord, StepRecords

from workflows.options import step_options

# Mirror writes are local activities: cheap, retried without limit (Postgres may be down
# for a while), and idempotent upserts keyed by run id and step id.
MIRROR_TIMEOUT = timedelta(seconds=15)
MIRROR_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200),
                           maximum_interval=timedelta(seconds=5))

_BUFFERED: frozenset[str] = frozenset({"completed", "reused", "skipped"})


class StepMirror:
    """Writes a run's step rows (and its pending "running" row) into the mirror."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.pending: list[StepRecord] = []
        self.pending_run: RunRecord | None = None
        """The run's "running" record, waiting for the first step write to carry it."""

    async def write(self, record: StepRecord, *, written: bool = False) -> None:
        """Upsert the record when the mirror is on (unless the step's own activity has
        ``written`` it already); a finished record waits for the next write."""
        if not self.enabled or written:
            return
        if record.status in _BUFFERED:
            self.pending.append(record)
            return
        await self.flush(record)

    async def flush(self, record: StepRecord | None = None) -> None:
        """Write buffered step records (and `record`) in one local activity."""
        records, self.pending = [*self.pending, *([record] if record else [])], []
        if not records and self.pending_run is None:
            return
        if len(records) == 1 and self.pending_run is None:
            await workflow.execute_local_activity(
                "mirror_step", records[0], start_to_close_timeout=MIRROR_TIMEOUT,
                retry_policy=MIRROR_RETRY,
                summary=f"mirror {records[0].step_id} {records[0].status}")
            return
        with self._carrying_run() as run:
            await workflow.execute_local_activity(
                "mirror_steps", StepRecords(records=records, run=run),
                start_to_close_timeout=MIRROR_TIMEOUT, retry_policy=MIRROR_RETRY,
                summary="mirror " + ", ".join([*(["run running"] if run else []),
                                               *(f"{r.step_id} {r.status}" for r in records)]))

    async def transform(self, step: TransformStep, run_id: str, mapped: dict[str, Any],
                        record: StepRecord) -> TransformStepResult:
        """A transform as a local activity that writes its own finished row, with the
        buffered records (and the run's pending row) in the same trip."""
        opts = step_options(step)
        sent = list(self.pending) if self.enabled else []
        with self._carrying_run() as run:
            request = TransformStepRequest(
                run_id=run_id, step_id=step.id, input=mapped, expression=step.expression,
                pending=sent, run=run, record=record.model_copy() if self.enabled else None)
            result: TransformStepResult = await workflow.execute_local_activity(
                "transform_step", request, result_type=TransformStepResult,
                start_to_close_timeout=opts.start_to_close, retry_policy=opts.retry_policy,
                summary=opts.summary)
        if result.mirrored and sent:
            self.pending = [r for r in self.pending if all(r is not s for s in sent)]
        if not result.mirrored:
            self._keep_run(run)  # the next mirror write carries it
        return result

    async def own_write(self, record: StepRecord) -> StepSelfWrite | None:
        """The step's rows for its own activity to write (None: the mirror is off). When
        other records wait (finished steps, the run's "running" row), they are written now
        with the step's "running" row, and the activity writes only its finished row: no
        record is left to an activity that may queue for a while."""
        if not self.enabled:
            return None
        started = bool(self.pending) or self.pending_run is not None
        if started:
            await self.flush(record)
        return StepSelfWrite(record=record.model_copy(), started=started)

    @contextmanager
    def _carrying_run(self) -> Iterator[RunRecord | None]:
        """Hand the run's pending "running" row to one write. If that write fails or is
        cancelled, the next write must still carry it: the run's row lands before any of
        its steps (a child's or a triggered run's row may not exist yet)."""
        run, self.pending_run = self.pending_run, None
        try:
            yield run
        except BaseException:
            self._keep_run(run)
            raise

    def _keep_run(self, run: RunRecord | None) -> None:
        if run is not None and self.pending_run is None:
            self.pending_run = run
