"""A local service's process: ports, its log, stopping its group, and the lifecycle both share."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self


class StackStartError(RuntimeError):
    """A local service did not become ready; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the kernel choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_free(host: str, port: int) -> bool:
    """True if a server could listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def log_tail(path: Path, start: int = 0, lines: int = 40) -> str:
    """The last lines of a log file written since byte offset ``start``."""
    try:
        with path.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class LocalService(ABC):
    """A server this process starts and stops: ``async with`` starts it and stops it again."""

    @abstractmethod
    async def start(self) -> Self:
        """Start the server and wait until it answers."""

    @abstractmethod
    def stop(self, timeout: float = 5.0) -> None:
        """Stop the server and wait for its process to exit."""

    async def restart(self) -> None:
        """Stop and start again on the same ports, files and data folder."""
        await asyncio.to_thread(self.stop)
        await self.start()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def kill_group(pid: int, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM the process group led by ``pid``, SIGKILL it if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (process.poll() is not None) if process is not None else not pid_alive(pid):
                # The leader is gone; take any stragglers in its group with it.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
                return
            time.sleep(0.02)
    if process is not None:
        process.wait(timeout)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie does not count)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True
