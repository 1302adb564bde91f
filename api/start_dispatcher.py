"""Starts queued runs in Temporal, off the request path (README: How it runs).

The API records a run ``pending`` with its start queued (store/run_starts.py) and answers;
a ``StartDispatcher`` in every API process (and worker) starts it: woken in-process by the
launcher, by Postgres NOTIFY from other processes, or by its poll. Exactly once: the workflow
id is the run id and the id policies refuse a second start (``WorkflowAlreadyStartedError``
means another dispatcher got there first, which is success).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.exc import DBAPIError
from temporalio.client import Client
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from promptpilot.settings import DispatchSettings
from schema.errors import ErrorType
from schema.run import RunWorkflowInput, StepError
from schema.run_labels import run_details, run_summary
from schema.run_priority import run_priority
from schema.search_attributes import SA_ENVIRONMENT, SA_SLUG, SA_TRIGGER, SA_VERSION
from schema.workflow_names import WORKFLOW_NAME
from store.run_starts import ClaimedStart, RunStarts

log = logging.getLogger("api.start_dispatcher")
ClientFor = Callable[[str], Awaitable[Client]]
# Temporal (or the way to it) refuses this request for good: retrying cannot help.
_FINAL = (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.PERMISSION_DENIED,
          RPCStatusCode.UNIMPLEMENTED)
# Worth another try later: the way to Temporal, or to the payload storage's Postgres.
_TRANSIENT = (OSError, RuntimeError, TimeoutError, asyncpg.PostgresError,
              asyncpg.InterfaceError, DBAPIError)


async def start_workflow(client: Client, run_input: RunWorkflowInput, task_queue: str,
                         rpc_seconds: float, *, eager: bool = True) -> None:
    """Start the interpreter for one run; the workflow id is the run id.

    Raises ``WorkflowAlreadyStartedError`` when a workflow of that id exists or existed.
    """
    await client.start_workflow(
        WORKFLOW_NAME, run_input, id=run_input.run_id, task_queue=task_queue,
        # Never a second workflow for a run: a running one and a closed one both refuse.
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes([
            SearchAttributePair(SA_SLUG, run_input.workflow_slug),
            SearchAttributePair(SA_ENVIRONMENT, run_input.environment),
            SearchAttributePair(SA_TRIGGER, run_input.trigger),
            SearchAttributePair(SA_VERSION, run_input.workflow_version),
        ]),
        # What the Temporal UI's workflow list shows: workflow, version, trigger.
        static_summary=run_summary(run_input), static_details=run_details(run_input),
        priority=run_priority(run_input),
        # With a worker on this client (promptpilot dev) its first workflow task comes back
        # with the start response; otherwise the server ignores the request.
        request_eager_start=eager,
        # Without it a call to an unreachable server retries for about 30 s.
        rpc_timeout=timedelta(seconds=rpc_seconds),
    )


class StartDispatcher:
    """Claims due starts (``FOR UPDATE SKIP LOCKED`` and a lease) and starts them."""

    def __init__(self, starts: RunStarts, client_for: ClientFor, task_queue: str,
                 settings: DispatchSettings, environments: Sequence[str] | None = None,
                 *, eager: bool = True, min_age_seconds: float = 0) -> None:
        self._starts = starts
        self._client_for = client_for
        self._task_queue = task_queue
        self._settings = settings
        self._environments = environments  # None: every environment (the API)
        self._eager = eager
        self._min_age = min_age_seconds  # a backstop leaves fresh starts to their API
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._failing = False
        # Starts this dispatcher is making: a waiting request joins one rather than poll.
        self._in_flight: dict[str, asyncio.Future[bool]] = {}
        self._claiming: asyncio.Future[None] | None = None  # the loop's claim, while it runs

    def wake(self) -> None:
        """A start was queued: look for due starts now."""
        self._woken.set()

    async def start_now(self, run_id: str) -> bool:
        """Start this queued run from the caller's task (a start that waits for its result);
        True when Temporal has its workflow. Someone else holding it, or Temporal away (the
        start goes back to the queue, with backoff): False."""
        claimed = await self._starts.claim(run_id, self._settings.lease_seconds)
        if claimed is None:
            # Our own loop may hold it (its claim ran first, woken by the same insert): join
            # that start rather than poll Temporal for a workflow that is about to exist.
            if run_id not in self._in_flight and self._claiming is not None:
                await asyncio.shield(self._claiming)
            in_flight = self._in_flight.get(run_id)
            return await asyncio.shield(in_flight) if in_flight is not None else False
        return await self._start(claimed)

    async def __aenter__(self) -> StartDispatcher:
        try:
            await self._starts.open_pool()
        except (OSError, asyncpg.PostgresError) as exc:  # Postgres away: the engine's pool
            log.warning("start dispatcher: no connections of its own: %r", exc)
        self._task = asyncio.create_task(self.run_forever(), name="start-dispatcher")
        return self

    async def __aexit__(self, *_: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self._close_listener()
        await self._starts.aclose()

    async def run_forever(self) -> None:
        """Start due runs until cancelled; a failed pass is logged and tried again.

        Up to ``batch_size`` starts are in flight at once, and new ones are claimed as soon as
        they are queued (not when a whole batch is done): under a steady stream each start
        waits only for its own call to Temporal.
        """
        settings = self._settings
        starting: dict[asyncio.Task[bool], str] = {}
        try:
            while True:
                await self._listen()
                self._woken.clear()
                room = settings.batch_size - len(starting)
                claimed: list[ClaimedStart] = []
                if room > 0:
                    try:
                        claimed = await self._claim_due(room)
                    except Exception as exc:  # Postgres away, say: the loop goes on, polls
                        log.log(logging.DEBUG if self._failing else logging.WARNING,
                                "start dispatch failed: %r", exc)
                        self._failing = True
                for c in claimed:
                    starting[asyncio.create_task(self._start(c))] = c.run_id
                if claimed and len(claimed) == room:
                    continue  # more may be due
                woken = asyncio.ensure_future(self._woken.wait())
                finished, _ = await asyncio.wait([woken, *starting], timeout=settings.poll_seconds,
                                                 return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
                await asyncio.gather(woken, return_exceptions=True)
                for task in finished & starting.keys():
                    del starting[task]
                    if not task.cancelled() and (problem := task.exception()) is not None:
                        log.warning("a start failed: %r", problem)
        finally:
            for task in starting:
                task.cancel()
            await asyncio.gather(*starting, return_exceptions=True)
            for run_id in starting.values():  # a start cancelled before it ran
                if (waiting := self._in_flight.pop(run_id, None)) is not None \
                        and not waiting.done():
                    waiting.set_result(False)

    async def _claim_due(self, limit: int) -> list[ClaimedStart]:
        """Claim due starts; each is in flight (joinable) from the moment the claim returns."""
        loop = asyncio.get_running_loop()
        claiming = self._claiming = loop.create_future()
        try:
            claimed = await self._starts.claim_due(self._environments, limit,
                                                   self._settings.lease_seconds, self._min_age)
            for c in claimed:
                self._in_flight[c.run_id] = loop.create_future()
            return claimed
        finally:
            self._claiming = None
            claiming.set_result(None)

    async def _start(self, claimed: ClaimedStart) -> bool:
        done = self._in_flight.get(claimed.run_id)
        if done is None:
            done = self._in_flight[claimed.run_id] = asyncio.get_running_loop().create_future()
        started = False
        try:
            started = await self._attempt(claimed)
        except BaseException:
            # Cancelled mid-start (a waiting request's deadline, a shutdown): the start goes
            # back to the queue now rather than when its lease runs out.
            await asyncio.shield(self._starts.retry_later(claimed.run_id, 0, "interrupted"))
            raise
        finally:
            self._in_flight.pop(claimed.run_id, None)
            if not done.done():
                done.set_result(started)
        return started

    async def _attempt(self, claimed: ClaimedStart) -> bool:
        try:
            run_input = RunWorkflowInput.model_validate_json(claimed.start_input)
            client = await asyncio.wait_for(self._client_for(claimed.environment),
                                            self._settings.start_timeout_seconds)
            await start_workflow(client, run_input, self._task_queue,
                                 self._settings.start_timeout_seconds, eager=self._eager)
        except WorkflowAlreadyStartedError:
            pass  # another dispatcher (or an earlier attempt of ours) started it: done
        except RPCError as exc:
            if exc.status in _FINAL:
                await self._give_up(claimed, exc)
            else:
                await self._retry(claimed, exc)
            return False
        except _TRANSIENT as exc:  # connecting to Temporal (or payload storage) failed
            await self._retry(claimed, exc)
            return False
        except Exception as exc:  # the input cannot be read or encoded: never startable
            await self._give_up(claimed, exc)
            return False
        await self._starts.done(claimed.run_id)
        if self._failing:
            log.info("runs start in Temporal again")
            self._failing = False
        return True

    async def _retry(self, claimed: ClaimedStart, exc: BaseException) -> None:
        settings = self._settings
        delay = min(settings.backoff_initial_seconds * 2 ** max(claimed.attempts - 1, 0),
                    settings.backoff_max_seconds)
        # Once per outage, not once per run and attempt.
        log.log(logging.DEBUG if self._failing else logging.WARNING,
                "could not start run %s (attempt %s), trying again in %.1f s: %s",
                claimed.run_id, claimed.attempts, delay, exc)
        self._failing = True
        await asyncio.shield(self._starts.retry_later(claimed.run_id, delay, str(exc)))

    async def _give_up(self, claimed: ClaimedStart, exc: BaseException) -> None:
        # Temporal's own refusal is safe to show; any other error's message may quote the
        # run's input (a validation or encoding error), so only its type is told.
        reason = str(exc) if isinstance(exc, RPCError) else type(exc).__name__
        log.warning("run %s cannot be started: %s", claimed.run_id, reason)
        error = StepError(type=ErrorType.NOT_STARTED,
                          message=f"the run could not be started: {reason}"[:2000])
        await asyncio.shield(self._starts.fail(claimed.run_id, error.model_dump(mode="json")))

    async def _listen(self) -> None:
        """Hear queued starts of other processes; best effort (the poll covers a miss).

        A backstop (``min_age_seconds``) does not listen: every start it would hear of is too
        fresh for it, and a claim per queued start (one statement per run, in B4) found none.
        Its poll finds the ones left behind."""
        if self._min_age > 0 or (self._listener is not None and not self._listener.is_closed()):
            return
        try:
            # Bounded: a Postgres that does not answer must not hold up the starts.
            self._listener = await asyncio.wait_for(self._starts.listen(self.wake),
                                                    self._settings.start_timeout_seconds)
        except Exception as exc:
            log.debug("start dispatcher: LISTEN unavailable, polling: %r", exc)
            self._listener = None

    async def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await listener.close()
