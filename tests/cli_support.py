"""Running the `promptpilot` command as a user would: the installed script, in a subprocess."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

PROMPTPILOT = str(Path(sys.executable).parent / "promptpilot")


@dataclass
class Result:
    """What a command printed and how it exited."""

    code: int
    stdout: str
    stderr: str

    @property
    def text(self) -> str:
        """Both streams, for assertion messages."""
        return f"exit {self.code}\n--- stdout\n{self.stdout}--- stderr\n{self.stderr}"


def cli_env(url: str | None = None, key: str | None = None) -> dict[str, str]:
    """The environment with the API's address and key set (or unset) the documented way."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PROMPTPILOT_URL", "PROMPTPILOT_API_KEY")}
    if url is not None:
        env["PROMPTPILOT_URL"] = url
    if key is not None:
        env["PROMPTPILOT_API_KEY"] = key
    return env


async def promptpilot(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run `promptpilot ARGS...` and wait (up to a minute) for it to exit."""
    process = await asyncio.create_subprocess_exec(
        PROMPTPILOT, *args, env=env if env is not None else cli_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Result(process.returncode, out.decode(), err.decode())
