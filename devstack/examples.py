"""The example workflows `promptpilot dev` loads (feed-discovery)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def example_definitions() -> list[dict[str, Any]]:
    """Every packaged example definition."""
    folder = resources.files("devstack") / "examples"
    return [json.loads(entry.read_text()) for entry in sorted(folder.iterdir(), key=str)
            if entry.name.endswith(".json")]
