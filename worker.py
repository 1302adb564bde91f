"""The worker's entry point: ``python worker.py`` is ``promptpilot worker``.

What it runs is built in ``promptpilot/worker_build.py``; how it runs (database, deployment
build, reconciler) is ``promptpilot/services.py``.
"""

from __future__ import annotations

from promptpilot.cli import main as cli_main


def main() -> None:
    """Run a worker, as ``promptpilot worker`` does."""
    cli_main(["worker"])


if __name__ == "__main__":
    main()
