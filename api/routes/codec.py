"""Temporal's codec-server endpoints: `POST /codec/encode`, `/codec/decode`, `/codec/download`.

The Temporal UI and CLI send history payloads here to show them decrypted, with large ones
resolved from storage (README: Payloads: storage and encryption). Each request needs an API
key: `Authorization: Bearer <key>` (the CLI's `--codec-auth`, or a proxy in front of the UI),
or the inspector's session cookie (a UI with "include cross-origin credentials"). In the dev
environment only, the key may stand in the path instead, `/codec/k/<key>/decode`: that is
how `promptpilot dev` points its Temporal UI here, which can send neither. A key decodes
only its own environment's namespace. CORS admits the Temporal UI's origin alone.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from api.deps import StateDep
from api.state import AppState
from api.ui import session
from payloads.codec_service import CodecRefused, CodecService
from promptpilot.settings import Settings
from promptpilot.temporal import payload_pipeline
from schema.api import ErrorBody, ErrorEnvelope
from schema.problems import Problem, pointer

router = APIRouter(prefix="/codec", tags=["codec"])
Operation = Literal["encode", "decode", "download"]
_ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization, Authorization-Extras"


def allowed_origins(settings: Settings) -> set[str]:
    """The browser origins that may call the codec: the setting, else the Temporal UI's."""
    configured = settings.payloads.codec_cors_origins
    if configured:
        return {origin.rstrip("/") for origin in configured}
    ui = urlsplit(settings.temporal.ui_url)
    origins = {f"{ui.scheme}://{ui.netloc}"}
    for a, b in (("localhost", "127.0.0.1"), ("127.0.0.1", "localhost")):
        if ui.hostname == a:  # the same machine under its other name
            origins.add(f"{ui.scheme}://{ui.netloc.replace(a, b)}")
    return origins


def _cors(request: Request, settings: Settings) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin or origin not in allowed_origins(settings):
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin"}


def _refusal(request: Request, settings: Settings, status: int, code: str, message: str,
             index: int | None = None) -> JSONResponse:
    problems = [] if index is None else [Problem(pointer=pointer("payloads", index),
                                                 message=message)]
    body = ErrorEnvelope(error=ErrorBody(code=code, message=message, problems=problems))
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status,
                        headers=_cors(request, settings))


async def _environment(state: AppState, request: Request, path_key: str | None) -> str:
    """The caller's environment, from its key; CodecRefused(401) without a valid one."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    key = token.strip() if scheme.lower() == "bearer" else ""
    if not key and (found := await session.current_session(request, state)) is not None:
        return found.key.environment  # the inspector's session (its key checked on lookup)
    from_path = not key and path_key is not None
    key = key or path_key or ""
    if not key:
        raise CodecRefused(401, "unauthorized", "missing API key: send 'Authorization: Bearer "
                           "<key>' (temporal ... --codec-auth 'Bearer <key>')")
    row = await state.keys.verify(key)
    if row is None:
        raise CodecRefused(401, "unauthorized", "invalid or revoked API key")
    if from_path and not (row.environment == "dev" == state.settings.environment):
        raise CodecRefused(401, "unauthorized", "a key in the URL is accepted in the dev "
                           "environment only: send 'Authorization: Bearer <key>'")
    return row.environment


async def _serve(state: AppState, request: Request, operation: Operation,
                 path_key: str | None) -> Response:
    settings = state.settings
    try:
        environment = await _environment(state, request, path_key)
        namespace = settings.namespace_for(environment)
        asked = request.headers.get("x-namespace")
        if asked and asked != namespace:
            raise CodecRefused(403, "forbidden", f"this key's environment is {environment!r}"
                               f" (namespace {namespace!r}), not namespace {asked!r}")
        try:
            payloads = list(json_format.Parse(await request.body(), Payloads(),
                                                  ignore_unknown_fields=True).payloads)
        except (json_format.ParseError, UnicodeDecodeError) as exc:  # not JSON, not UTF-8
            raise CodecRefused(400, "invalid_payloads", "the body must be Temporal Payloads "
                               f"as JSON ({{\"payloads\": [...]}}): {exc}") from None
        service = CodecService(payload_pipeline(settings))
        if operation == "encode":
            result = await service.encode(payloads, namespace)
        elif operation == "download":
            result = await service.download(payloads, namespace)
        else:
            preserve = request.query_params.get("preserveStorageRefs", "").lower() == "true"
            result = await service.decode(payloads, namespace, preserve_refs=preserve)
    except CodecRefused as refused:
        return _refusal(request, settings, refused.status, refused.code, refused.message,
                        refused.index)
    body = json_format.MessageToJson(Payloads(payloads=result), indent=None)
    return Response(body, media_type="application/json", headers=_cors(request, settings))


def _preflight(request: Request, settings: Settings) -> Response:
    headers = _cors(request, settings)
    if "Access-Control-Allow-Origin" in headers:
        headers |= {"Access-Control-Allow-Methods": "POST, OPTIONS", "Access-Control-Max-Age":
                    "600", "Access-Control-Allow-Headers": _ALLOWED_HEADERS}
    return Response(status_code=204, headers=headers)


@router.post("/{operation}", summary="Temporal codec server: encode, decode or download")
async def codec(operation: Operation, request: Request, state: StateDep) -> Response:
    """Payloads in, payloads out (Temporal's remote codec protocol); needs an API key."""
    return await _serve(state, request, operation, None)


@router.post("/k/{key}/{operation}", include_in_schema=False)
async def codec_with_path_key(operation: Operation, key: str, request: Request,
                              state: StateDep) -> Response:
    """The same, with a dev-environment key in the path (the dev Temporal UI's endpoint)."""
    return await _serve(state, request, operation, key)


@router.options("/{operation}", include_in_schema=False)
@router.options("/k/{key}/{operation}", include_in_schema=False)
async def codec_preflight(request: Request, state: StateDep) -> Response:
    """CORS preflight: only the Temporal UI's origin is admitted."""
    return _preflight(request, state.settings)
