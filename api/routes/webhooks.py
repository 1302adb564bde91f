"""`POST /api/webhooks/{triggerId}`: Standard Webhooks signatures, replay refusal, 202.

Verified deliveries are stored in `webhook_deliveries`; refused ones (unsigned, malformed,
forged, stale, replayed) only add to the trigger's `refused_deliveries` counter, so a sender
without the secret cannot fill the database. The order of checks keeps a forged request from
consuming anything: signature and timestamp first, then the replay claim on `webhook-id`
(unique per trigger), then the payload against the variables; a delivery refused at that last
stage gives its id back.
"""

from __future__ import annotations

import json
import uuid

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.deps import IdempotencyKey, StateDep
from api.errors import ApiError, not_found
from api.launcher import StartRequest, start_run
from api.state import AppState
from api.trigger_views import triggers
from api.webhook_signatures import SignatureInvalid, verify
from definition.limits import LimitExceeded, check_input_size
from definition.validation import DefinitionInvalid
from schema.problems import Problem
from schema.triggers import TriggeredRun
from store.trigger_tables import TriggerRow
from store.triggers import VersionUnavailable

router = APIRouter(prefix="/api/webhooks", tags=["webhooks"])


@router.post("/{trigger_id}", status_code=202, response_model=TriggeredRun,
             responses={401: {"description": "signature, timestamp or replay check failed"}})
async def receive(trigger_id: uuid.UUID, request: Request, state: StateDep,
                  idempotency_key: IdempotencyKey = None) -> JSONResponse:
    """Verify a signed delivery and start a run with its JSON body as the input."""
    store = triggers(state)
    row = await store.get(trigger_id)
    if row is None or row.type != "webhook" or not row.webhook_secret:
        raise not_found(f"webhook trigger '{trigger_id}'")
    body = await request.body()
    try:
        webhook_id = verify(store.webhook_secret(row) or "", request.headers, body)
    except SignatureInvalid as exc:
        await store.count_refused(row, str(exc))
        raise ApiError(401, "invalid_signature", str(exc)) from None
    if not await store.claim_webhook_id(row, webhook_id):
        await store.count_refused(row, "replayed webhook-id")
        raise ApiError(401, "replayed", f"webhook-id '{webhook_id}' was already delivered")
    await store.seal_secret(row)
    try:
        run_id = await _start(state, row, body, idempotency_key)
    except (DefinitionInvalid, LimitExceeded, ApiError) as exc:
        # Refused after verification, no run started: the id is the sender's again, so its
        # corrected retry with the same id is accepted (a replay of this very delivery is
        # refused the same way it was, starting nothing).
        await store.release_webhook_id(row, webhook_id)
        reason = ("input invalid" if isinstance(exc, DefinitionInvalid)
                  else exc.code)
        await store.record_delivery(row, webhook_id, verified=True, reason=reason)
        raise
    await store.record_delivery(row, webhook_id, verified=True, run_id=run_id)
    answer = TriggeredRun(run_id=run_id, status="pending", trigger_id=str(row.id))
    return JSONResponse(answer.model_dump(mode="json"), status_code=202)


async def _start(state: AppState, row: TriggerRow, body: bytes,
                 idempotency_key: str | None) -> str:
    if not row.enabled:
        raise ApiError(409, "trigger_disabled", "the trigger is disabled")
    try:
        payload = json.loads(body or b"{}")
    except ValueError as exc:
        raise DefinitionInvalid([Problem(pointer="", message=f"body is not JSON: {exc}")],
                                "invalid payload") from None
    if not isinstance(payload, dict):
        raise DefinitionInvalid([Problem(pointer="", message="body must be a JSON object")],
                                "invalid payload")
    check_input_size(payload, state.settings.limits, "")
    try:
        workflow, version = await triggers(state).resolve_version(row)
    except VersionUnavailable as exc:
        raise ApiError(409, "version_unavailable", str(exc)) from None
    return await start_run(state, StartRequest(
        environment=row.environment, workflow=workflow, version=version,
        input={**(row.input_json or {}), **payload}, trigger="webhook", trigger_id=str(row.id),
        idempotency_key=idempotency_key))
