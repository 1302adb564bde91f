"""The API's codec-server endpoints: what the Temporal UI and `temporal workflow show
--codec-endpoint` call to read a run's payloads, and who may call them."""

from __future__ import annotations

import json
from typing import Any

import httpx
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType

from payloads.codec import ENCODING
from payloads.codec_service import is_reference
from promptpilot.temporal import connect
from tests.conftest import DEV_KEY, PROD_KEY, Service, unique_slug
from tests.ui_login import sign_in

SENTINEL = "sentinel-7f3a9c-customer-record"
BEARER = {"Authorization": f"Bearer {DEV_KEY}"}


def echo(slug: str, expression: str) -> dict[str, Any]:
    return {"id": slug, "name": "echo", "variables": [
        {"name": "text", "type": "string", "required": True}], "steps": [
        {"id": "shout", "type": "transform", "expression": expression,
         "inputMapping": {"text": "input.text"}}]}


def body(*payloads: Payload) -> str:
    return json_format.MessageToJson(Payloads(payloads=payloads))


def parsed(response: httpx.Response) -> list[Payload]:
    assert response.status_code == 200, response.text
    return list(json_format.Parse(response.text, Payloads()).payloads)


async def _history_payloads(service: Service, text: str,
                            expression: str = "{said: text}") -> tuple[Payload, Payload]:
    """(the run's input as history holds it, the transform's result as history holds it)"""
    slug = unique_slug("codec")
    await service.create_workflow(echo(slug, expression))
    run = (await service.run(slug, {"text": text})).json()["run"]
    assert run["status"] == "completed", run
    client = await connect(service.settings, "dev")
    history = await client.get_workflow_handle(run["id"]).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes.input.payloads[0]
    marker = next(e for e in history.events
                  if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED)
    result = marker.marker_recorded_event_attributes.details["result"].payloads[0]
    return started, result


async def test_decode_needs_a_key_and_shows_the_run_decrypted(service: Service) -> None:
    large = SENTINEL + " " + "x" * 100_000
    reference, result = await _history_payloads(service, large, "{chars: length(text)}")
    assert is_reference(reference)  # over the threshold: history holds a reference
    assert result.metadata["encoding"] == ENCODING  # under it: inline, encrypted
    assert SENTINEL.encode() not in reference.SerializeToString() + result.SerializeToString()
    http = httpx.AsyncClient(base_url=service.url)  # no key

    refused = await http.post("/codec/decode", content=body(result))
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    wrong = await http.post("/codec/k/pp_not_a_key/decode", content=body(result))
    assert wrong.status_code == 401

    [shown] = parsed(await http.post("/codec/decode", content=body(result), headers=BEARER))
    assert shown.metadata["encoding"] == b"json/plain"
    assert json.loads(shown.data)["output"] == {"chars": len(large)}
    # The dev environment's Temporal UI sends its key in the path (it can send no header).
    [same] = parsed(await http.post(f"/codec/k/{DEV_KEY}/decode", content=body(result)))
    assert same == shown

    # The UI draws history with references kept, and downloads one when asked.
    [kept] = parsed(await http.post("/codec/decode?preserveStorageRefs=true",
                                    content=body(reference), headers=BEARER))
    assert is_reference(kept)
    assert kept.external_payloads[0].size_bytes > 100_000
    [resolved] = parsed(await http.post("/codec/decode", content=body(reference),
                                        headers=BEARER))
    [downloaded] = parsed(await http.post("/codec/download", content=body(reference),
                                          headers=BEARER))
    assert resolved == downloaded
    assert json.loads(resolved.data)["input"] == {"text": large}
    not_ref = await http.post("/codec/download", content=body(result), headers=BEARER)
    assert not_ref.status_code == 400
    await http.aclose()


async def test_tampered_payloads_and_other_namespaces_are_refused(service: Service) -> None:
    _, result = await _history_payloads(service, SENTINEL)
    async with httpx.AsyncClient(base_url=service.url, headers=BEARER) as http:
        tampered = Payload()
        tampered.CopyFrom(result)
        tampered.data = tampered.data[:-1] + bytes([tampered.data[-1] ^ 1])
        response = await http.post("/codec/decode", content=body(result, tampered))
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "payload_not_decryptable"
        assert error["problems"][0]["pointer"] == "/payloads/1"
        assert "failed authentication" in error["message"]

        other = await http.post("/codec/decode", content=body(result),
                                headers={"X-Namespace": "prod"})
        assert other.status_code == 403
        prod = await http.post("/codec/decode", content=body(result),
                               headers={"Authorization": f"Bearer {PROD_KEY}"})
        assert prod.status_code == 200  # decrypts, but its own namespace's references only
        garbage = await http.post("/codec/decode", content="{not json")
        assert garbage.status_code == 400


async def test_encode_encrypts_and_keeps_large_payloads_in_storage(service: Service) -> None:
    small = Payload(metadata={"encoding": b"json/plain"}, data=b'"hello"')
    big = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps("y" * 200_000).encode())
    async with httpx.AsyncClient(base_url=service.url, headers=BEARER) as http:
        sealed, stored = parsed(await http.post("/codec/encode", content=body(small, big)))
        assert sealed.metadata["encoding"] == ENCODING
        assert is_reference(stored)
        back = parsed(await http.post("/codec/decode", content=body(sealed, stored)))
        assert back == [small, big]


async def test_cors_admits_the_temporal_ui_origin_only(service: Service) -> None:
    ui = service.settings.temporal.ui_url.rstrip("/")
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type,x-namespace"}
    async with httpx.AsyncClient(base_url=service.url) as http:
        allowed = await http.options("/codec/decode", headers={"Origin": ui, **preflight})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == ui
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert "X-Namespace" in allowed.headers["access-control-allow-headers"]
        other = await http.options("/codec/decode",
                                   headers={"Origin": "http://evil.example", **preflight})
        assert "access-control-allow-origin" not in other.headers
        refused = await http.post("/codec/decode", content=body(), headers={"Origin": ui})
        assert refused.status_code == 401  # the browser can read why
        assert refused.headers["access-control-allow-origin"] == ui


async def test_the_inspectors_session_decodes_for_the_temporal_ui(service: Service) -> None:
    # The production Temporal UI sends the inspector's cookie ("include credentials"): the
    # session, never a key in the cookie, is what lets it decode.
    _, result = await _history_payloads(service, "hello", "{said: text}")
    async with httpx.AsyncClient(base_url=service.url,
                                 cookies={"pp_session": "not-a-session"}) as forger:
        forged = await forger.post("/codec/decode", content=body(result))
        assert forged.status_code == 401
    async with httpx.AsyncClient(base_url=service.url) as browser:
        await sign_in(browser)
        [shown] = parsed(await browser.post("/codec/decode", content=body(result)))
    assert json.loads(shown.data)["output"] == {"said": "hello"}
