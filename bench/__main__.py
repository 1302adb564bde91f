"""``python -m bench [--quick]``: the side-by-side table, printed and written to bench/results.md.

Every variant runs in this one process against its own Temporal dev server (the ``make dev``
settings: SQLite file in WAL mode, fast transfer polling) and its own embedded Postgres; the
API-start figure uses ``promptpilot api`` as its own process, with the worker staying here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from bench.report import Report


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer runs and rounds (~3 min)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved ratio rounds")
    parser.add_argument("--api-requests", type=int, default=None)
    parser.add_argument("--no-dbos", action="store_true", help="skip P1")
    parser.add_argument("--api-only", action="store_true",
                        help="only the API start figures (beside Temporal's own start)")
    parser.add_argument("--api-in-process", action="store_true",
                        help="serve the API in the bench's process and event loop (the worker's)"
                        " instead of as its own `promptpilot api` process")
    parser.add_argument("--scale", action="store_true",
                        default=os.environ.get("BENCH_SCALE") == "1",
                        help="the scale pass too: 100/1,000/2,000 LLM pipeline runs in flight"
                        " (also BENCH_SCALE=1)")
    parser.add_argument("--b4-only", action="store_true", help="only B4 (and --scale)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results.md"))
    return parser.parse_args(argv)


@asynccontextmanager
async def _services(folder: Path) -> AsyncIterator[tuple[Any, Any]]:
    from devstack.stack import EmbeddedPostgres, TemporalDevServer
    from schema.search_attributes import SEARCH_ATTRIBUTES

    temporal = TemporalDevServer(folder / "temporal", db_file=folder / "temporal" / "t.db",
                                 namespaces=["dev"], ui=False,
                                 search_attributes=SEARCH_ATTRIBUTES)
    postgres = EmbeddedPostgres(folder / "pg")
    try:
        await temporal.start()
        await postgres.start()
        yield temporal, postgres
    finally:
        # Blocking on purpose: DBOS shuts down the loop's default executor on its way out.
        temporal.stop()
        postgres.stop()


async def _main(args: argparse.Namespace) -> Report:
    from bench.suite import Suite

    report = Report(quick=args.quick)
    with tempfile.TemporaryDirectory(prefix="pp-bench-") as tmp:
        async with _services(Path(tmp)) as (temporal, postgres), AsyncExitStack() as stack:
            suite = Suite(args, temporal, postgres, report)
            await suite.setup(stack)
            await suite.run_all()
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the results file."""
    args = _parse(argv)
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="pp-xdg-"))
    began = time.monotonic()
    report = asyncio.run(_main(args))
    report.total_seconds = time.monotonic() - began
    text = report.markdown()
    args.out.write_text(text)
    sys.stdout.write(text + f"\n(written to {args.out})\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    # The Temporal SDK can abort at interpreter exit (see ARCHITECTURE.md): leave at once.
    os._exit(code)
