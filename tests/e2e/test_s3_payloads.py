"""The production path for large payloads: the SDK's S3 driver, against a local S3-compatible
server (moto's server mode), so it is not code that only production runs."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from google.protobuf import json_format
from moto.server import ThreadedMotoServer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.api.common.v1 import Payloads
from temporalio.api.sdk.v1.external_storage_pb2 import ExternalStorageReference

from devstack.process import free_port
from payloads.codec_service import is_reference
from promptpilot.settings import Settings
from promptpilot.temporal import connect
from tests.conftest import unique_slug
from tests.e2e.test_large_payloads import big_text, history_bytes, page_pipeline
from tests.fakes.llm_server import FakeLlmServer, ok
from tests.payload_support import history_payloads, serving

BUCKET = "promptpilot-payloads"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
               "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        boto3.client("s3", endpoint_url=url, **CREDENTIALS).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


def s3_settings(settings: Settings, url: str) -> Settings:
    own = settings.model_copy(deep=True)
    p = own.payloads
    p.storage, p.s3_bucket, p.s3_endpoint_url, p.s3_region = "s3", BUCKET, url, "us-east-1"
    p.s3_access_key_id, p.s3_secret_access_key = "testing", SecretStr("testing")
    return own


async def test_large_payloads_go_to_s3_encrypted_and_the_run_reads_them_back(
        settings: Settings, engine: AsyncEngine, llm: FakeLlmServer, s3_url: str) -> None:
    own = s3_settings(settings, s3_url)
    slug = unique_slug("s3")
    page = big_text(1024 * 1024)
    llm.enqueue(ok(page), ok("summary of a megabyte"))
    async with serving(own) as http:
        assert (await http.post("/api/workflows", json=page_pipeline(slug))).status_code == 201
        run = (await http.post(f"/api/workflows/{slug}/run", json={"input": {}})).json()["run"]
        assert run["status"] == "completed", run.get("error")
        assert run["outputJson"] == "summary of a megabyte"
        assert llm.requests[-1].body["messages"][-1]["content"].endswith(page)

        client = await connect(own, "dev")
        history = await client.get_workflow_handle(run["id"]).fetch_history()
        references = [p for p in history_payloads(history) if is_reference(p)]
        assert references
        assert history_bytes(history) < 100_000
        claims = [json_format.Parse(p.data, ExternalStorageReference()) for p in references]
        assert {c.driver_name for c in claims} == {"aws.s3driver"}

        # The bucket holds the payloads, under the run's workflow id, encrypted.
        s3 = boto3.client("s3", endpoint_url=s3_url, **CREDENTIALS)
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]]
        assert any(f"/wi/{run['id']}/" in key for key in keys)
        for claim in claims:
            body = s3.get_object(Bucket=BUCKET, Key=claim.claim_data["key"])["Body"].read()
            assert b"quick brown fox" not in body

        # The codec endpoint resolves them from S3 for the Temporal UI and CLI.
        response = await http.post("/codec/decode", content=json_format.MessageToJson(
            Payloads(payloads=references[:1])))
        [decoded] = json_format.Parse(response.text, Payloads()).payloads
        assert response.status_code == 200, response.text
        assert "quick brown fox" in json.dumps(json.loads(decoded.data))
