"""Keeps the mirror in agreement with Temporal for runs the interpreter could not record.

A run can end outside the interpreter (terminated, timed out, reset, failed by the server),
or its interpreter can fail to write its final row, or its workflow task can keep failing
(a bad deploy: the run is *stalled*, neither running nor finished). Each worker process runs
``RunReconciler.run_forever`` per environment; a sweep costs two visibility list queries and
two or three mirror reads, however many runs are in flight:

- runs Temporal closed since the last sweep (less a visibility lag) other than completed
  ones (the first sweep of a process takes those too), matched against the mirror: only
  those whose row disagrees are described and written;
- runs Temporal reports problems for (``TemporalReportedProblems``) are shown ``stalled``,
  and stalled rows whose problems cleared go back to ``running``;
- ``pending`` rows older than ``orphan_after_seconds`` whose workflow never started fail,
  unless their start is still queued (a start dispatcher holds them: store/run_starts.py).

The API reconciles single runs too: on read (a run not finished, checked at most every
``read_check_seconds``) and on cancel (``cancel``: ask Temporal, terminate after a grace).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowExecution, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from promptpilot.settings import ReconcileSettings
from reconcile.outcomes import AGREEING, CANCEL_REASON_PREFIX, TemporalView, temporal_view
from reconcile.repairs import MirrorRun, RunRepairs
from schema.errors import ErrorType
from schema.run import TERMINAL_RUN_STATUSES, StepError
from schema.workflow_names import WORKFLOW_NAME
from store.columns import utcnow
from store.runs import Store

log = logging.getLogger("reconcile.reconciler")
_RUNS = f'WorkflowType = "{WORKFLOW_NAME}"'
_CHECKS_KEPT = 10_000


@dataclass
class SweepReport:
    """What one sweep looked at and changed."""

    closed_listed: int = 0
    stalled_listed: int = 0
    written: dict[str, str] = field(default_factory=dict)
    """Run id -> the status written."""


class RunReconciler:
    """Brings one environment's mirror into agreement with its Temporal namespace."""

    def __init__(self, store: Store, client: Client, environment: str,
                 settings: ReconcileSettings) -> None:
        self._repairs = RunRepairs(store)
        self._client = client
        self._environment = environment
        self._settings = settings
        self._since: datetime | None = None
        self._problems_query = True  # off once a server refuses TemporalReportedProblems
        self._read_checks: OrderedDict[str, float] = OrderedDict()
        self._started_pending: OrderedDict[str, float] = OrderedDict()

    async def run_forever(self) -> None:
        """Sweep every ``interval_seconds`` until cancelled; a failed sweep is logged only."""
        failing = False
        while True:
            try:
                report = await self.sweep()
            except Exception as exc:  # Temporal or Postgres away: the next sweep tries again
                # Once per outage, not every interval.
                log.log(logging.DEBUG if failing else logging.WARNING,
                        "reconcile sweep of %s failed: %r", self._environment, exc)
                failing = True
            else:
                if failing:
                    log.info("reconcile sweeps of %s work again", self._environment)
                failing = False
                if report.written:
                    log.info("reconciled %s runs in %s: %s", len(report.written),
                             self._environment, report.written)
            await asyncio.sleep(self._settings.interval_seconds)

    async def sweep(self) -> SweepReport:
        """One pass over recently closed runs, stalled runs and orphaned pending rows."""
        report = SweepReport()
        started = utcnow()
        closes = 'ExecutionStatus != "Running"'
        if self._since is None:  # catching up: every close since the oldest unfinished row
            since = await self._repairs.oldest_open(self._environment) or started
        else:
            # A run completes only after its final row is written (the interpreter's mirror
            # writes retry until they land), so later sweeps leave completed runs out: most
            # closes are those, and listing them was most of a sweep's cost.
            since, closes = self._since, f'{closes} AND ExecutionStatus != "Completed"'
        since -= timedelta(seconds=self._settings.visibility_lag_seconds)
        closed = await self._list(f'{_RUNS} AND {closes} AND CloseTime >= "{since.isoformat()}"')
        stalled = await self._list_stalled()
        report.closed_listed, report.stalled_listed = len(closed), len(stalled)
        rows = await self._repairs.runs(self._environment,
                                        [e.id for e in closed] + [e.id for e in stalled])
        todo: list[str] = []
        for execution in closed:
            row = rows.get(execution.id)
            agreeing = AGREEING.get(execution.status) if execution.status else None
            if row is not None and (agreeing is None or row.status not in agreeing):
                todo.append(execution.id)
        todo += [e.id for e in stalled if e.id in rows and rows[e.id].status != "stalled"]
        listed = {e.id for e in stalled}
        todo += [i for i in await self._repairs.with_status(self._environment, "stalled")
                 if i not in listed]
        for run_id in dict.fromkeys(todo):
            if (status := await self.reconcile(run_id)) is not None:
                report.written[run_id] = status
        report.written.update(await self._orphans())
        self._since = started
        return report

    async def reconcile(self, run_id: str) -> str | None:
        """Check one run in Temporal and correct its row; the status written, else None."""
        rows = await self._repairs.runs(self._environment, [run_id])
        row = rows.get(run_id)
        if row is None:
            return None
        # Asked before Temporal: a start that leaves the queue has its workflow by then.
        if row.status == "pending" and await self._repairs.start_queued(run_id):
            return None  # its dispatcher holds it (Temporal may be away): not an orphan
        view = await temporal_view(self._client, run_id)
        if view is None:
            return await self._orphan(row)
        return await self._write(row, view)

    async def check_on_read(self, run_id: str, status: str, created_at: datetime) -> bool:
        """For an API read of a run that is not finished: reconcile it now if it is old enough
        and was not checked recently. True when its row changed."""
        period = self._settings.read_check_seconds
        now = time.monotonic()
        if status in TERMINAL_RUN_STATUSES or utcnow() - created_at < timedelta(seconds=period):
            return False
        last = self._read_checks.get(run_id)
        if last is not None and now - last < period:
            return False
        _remember(self._read_checks, run_id, now)
        try:
            return await self.reconcile(run_id) is not None
        except RPCError as exc:  # Temporal away: the read answers from the mirror
            log.debug("read check of %s failed: %s", run_id, exc)
            return False

    async def cancel(self, run_id: str, who: str) -> str:
        """Cancel a run through Temporal, whatever the mirror says.

        ``not_found`` (no workflow), ``finished`` (Temporal had closed it: the row is
        corrected), ``cancelled`` (it stopped within the grace period) or ``terminated``
        (stalled, or still going after the grace period: recorded ``cancelled`` with why).
        A run whose start is still queued is cancelled before it starts, without Temporal.
        """
        if await self._repairs.cancel_queued(run_id, StepError(
                type=ErrorType.CANCELLED, message=f"{CANCEL_REASON_PREFIX}{who} before it "
                                                  f"started")):
            return "cancelled"
        view = await temporal_view(self._client, run_id)
        if view is None:
            await self.reconcile(run_id)
            return "not_found"
        if view.status in TERMINAL_RUN_STATUSES:
            await self.reconcile(run_id)
            return "finished"
        handle = self._client.get_workflow_handle(run_id)
        grace = self._settings.cancel_grace_seconds
        if view.status == "running":
            await handle.cancel()
            if await _closes_within(handle.result(), grace):
                await self.reconcile(run_id)
                return "cancelled"
            reason = (f"{CANCEL_REASON_PREFIX}{who}; the run did not stop within the "
                      f"{grace:g} s grace period, so it was terminated")
        else:
            problem = view.error.message if view.error else "its workflow task keeps failing"
            reason = f"{CANCEL_REASON_PREFIX}{who}; the run was stalled ({problem[:300]})"
        try:
            await handle.terminate(reason=reason)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # it closed meanwhile: that is the truth
                raise
        await self.reconcile(run_id)
        return "terminated"

    async def _write(self, row: MirrorRun, view: TemporalView) -> str | None:
        if view.agrees(row.status):
            return None
        if view.status == "running" and row.status in TERMINAL_RUN_STATUSES:
            # The interpreter writes a run's final row just before its workflow closes; a
            # running workflow with a final row is one of those (or stalled, found above).
            return None
        return view.status if await self._repairs.apply(row, view) else None

    async def _orphan(self, row: MirrorRun) -> str | None:
        age = utcnow() - row.created_at
        if row.status != "pending" or age < timedelta(seconds=self._settings.orphan_after_seconds):
            return None
        view = TemporalView("failed", error=StepError(
            type=ErrorType.NOT_STARTED, message="the run's workflow never started in Temporal"))
        return view.status if await self._repairs.apply(row, view) else None

    async def _orphans(self) -> dict[str, str]:
        """Old ``pending`` rows: each described once; the ones Temporal never started fail."""
        before = utcnow() - timedelta(seconds=self._settings.orphan_after_seconds)
        # Runs whose start is still queued are their dispatcher's (Temporal may be away for
        # longer than orphan_after_seconds); they are left out before Temporal is asked.
        rows = await self._repairs.with_status(self._environment, "pending", before, limit=50,
                                               excluding=self._started_pending, unqueued=True)
        written: dict[str, str] = {}
        for run_id, row in rows.items():
            view = await temporal_view(self._client, run_id)
            if view is None:
                if (status := await self._orphan(row)) is not None:
                    written[run_id] = status
            elif (status := await self._write(row, view)) is not None:
                written[run_id] = status
            else:  # queued in Temporal (no worker yet): not described again
                _remember(self._started_pending, run_id, time.monotonic())
        return written

    async def _list(self, query: str) -> list[WorkflowExecution]:
        return [e async for e in self._client.list_workflows(query, page_size=1000)]

    async def _list_stalled(self) -> list[WorkflowExecution]:
        if not self._problems_query:
            return []
        try:
            return await self._list(f'{_RUNS} AND ExecutionStatus = "Running" '
                                    f'AND TemporalReportedProblems IS NOT NULL')
        except RPCError as exc:
            if exc.status != RPCStatusCode.INVALID_ARGUMENT:
                raise
            log.warning("this Temporal server has no TemporalReportedProblems (server 1.28+): "
                        "stalled runs are found on read and on cancel only")
            self._problems_query = False
            return []


async def _closes_within(result: Awaitable[Any], seconds: float) -> bool:
    try:
        await asyncio.wait_for(result, timeout=seconds)
    except TimeoutError:
        return False
    except (WorkflowFailureError, RPCError):
        return True
    return True


def _remember(seen: OrderedDict[str, float], key: str, at: float) -> None:
    seen[key] = at
    seen.move_to_end(key)
    while len(seen) > _CHECKS_KEPT:
        seen.popitem(last=False)

