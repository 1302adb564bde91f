"""Worker Versioning: the worker's deployment version and how a build becomes current or ramps."""

from __future__ import annotations

import asyncio
import hashlib
from importlib import metadata
from pathlib import Path

from temporalio.api.deployment.v1 import WorkerDeploymentInfo
from temporalio.api.enums.v1 import RoutingConfigUpdateState, WorkerDeploymentVersionStatus
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
    SetWorkerDeploymentRampingVersionRequest,
)
from temporalio.client import Client
from temporalio.common import WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode

from promptpilot.settings import Settings
from promptpilot.temporal import connect

# The code whose change makes a new build: a run must replay on the code it started on.
_INTERPRETER_PACKAGES = ("workflows", "definition", "schema")
# How long a worker's start or a `promptpilot deploy` command waits for the server.
ROUTING_SECONDS = 30.0


def interpreter_build_id() -> str:
    """``<package version>-<hash of the interpreter's sources>``: a new build per code change."""
    try:
        version = metadata.version("promptpilot")
    except metadata.PackageNotFoundError:
        version = "0"
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in _INTERPRETER_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{version}-{digest.hexdigest()[:12]}"


async def _describe(client: Client, deployment_name: str) -> WorkerDeploymentInfo | None:
    try:
        answer = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(namespace=client.namespace,
                                            deployment_name=deployment_name))
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return answer.worker_deployment_info


async def current_build(client: Client, deployment_name: str) -> str | None:
    """The build new runs go to, or None (no such deployment, or none made current yet)."""
    info = await _describe(client, deployment_name)
    if info is None:
        return None
    return info.routing_config.current_deployment_version.build_id or None


async def _until_routed(client: Client, deployment_name: str) -> None:
    """Wait until a routing change has reached the task queues: until then new runs may still
    start on the previous build."""
    async with asyncio.timeout(ROUTING_SECONDS):
        while True:
            info = await _describe(client, deployment_name)
            if info is not None and info.routing_config_update_state == (
                    RoutingConfigUpdateState.ROUTING_CONFIG_UPDATE_STATE_COMPLETED):
                return
            await asyncio.sleep(0.1)


async def set_current(client: Client, version: WorkerDeploymentVersion) -> None:
    """Send every new run to ``version`` (its workers must be polling); ends any ramp."""
    await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace, deployment_name=version.deployment_name,
            build_id=version.build_id, identity=client.identity))
    await _until_routed(client, version.deployment_name)


async def set_ramping(client: Client, version: WorkerDeploymentVersion, percent: float) -> None:
    """Send ``percent`` of new runs to ``version``, the rest to the current build."""
    await client.workflow_service.set_worker_deployment_ramping_version(
        SetWorkerDeploymentRampingVersionRequest(
            namespace=client.namespace, deployment_name=version.deployment_name,
            build_id=version.build_id, percentage=percent, identity=client.identity))
    await _until_routed(client, version.deployment_name)


async def make_current(client: Client, version: WorkerDeploymentVersion, *,
                       replace: bool = False) -> bool:
    """Make ``version`` current when its deployment has none (or, with ``replace``, when
    another build is current); True if it did.

    The first worker of a deployment (tests, a first install) would otherwise poll forever for
    runs routed to no build; ``promptpilot dev`` replaces, since its restart after a code change
    is the upgrade. In production a later build never takes over by itself: an operator ramps
    it and sets it current (``promptpilot deploy``). The server learns of a version from its
    workers' polls, so this retries until the worker's first poll has arrived.
    """
    async with asyncio.timeout(ROUTING_SECONDS):
        while True:
            current = await current_build(client, version.deployment_name)
            if current == version.build_id or (current is not None and not replace):
                return False
            try:
                await set_current(client, version)
                return True
            except RPCError as err:
                # The server has not seen this version's first poll yet.
                if err.status not in (RPCStatusCode.NOT_FOUND,
                                      RPCStatusCode.FAILED_PRECONDITION):
                    raise
            await asyncio.sleep(0.2)

async def builds(client: Client, deployment_name: str) -> dict[str, str]:
    """Each build of a deployment the server knows, and its state: ``current``, ``ramping``,
    ``draining`` (pinned runs still open on it), ``drained`` (its workers may stop), ..."""
    info = await _describe(client, deployment_name)
    if info is None:
        return {}
    return {v.deployment_version.build_id: WorkerDeploymentVersionStatus.Name(v.status)
            .removeprefix("WORKER_DEPLOYMENT_VERSION_STATUS_").lower()
            for v in info.version_summaries}


async def deploy_command(settings: Settings, command: str, build_id: str | None = None,
                         percent: float | None = None) -> list[str]:
    """``promptpilot deploy status|set-current BUILD|ramp BUILD PERCENT``: its output lines."""
    client = await connect(settings, settings.namespace)
    deployment = settings.temporal.deployment_name
    if command == "set-current" and build_id:
        await set_current(client, WorkerDeploymentVersion(deployment, build_id))
    elif command == "ramp" and build_id and percent is not None:
        await set_ramping(client, WorkerDeploymentVersion(deployment, build_id), percent)
    info = await _describe(client, deployment)
    if info is None:
        return [f"deployment {deployment!r} has no builds in namespace {client.namespace!r}"]
    ramp = info.routing_config.ramping_version_percentage
    return [f"deployment {deployment} (namespace {client.namespace})"] + [
        f"  {build}  {state}" + (f" {ramp:g}%" if state == "ramping" else "")
        for build, state in sorted((await builds(client, deployment)).items())]
