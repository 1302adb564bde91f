"""Built-in tools behind one registry, and the ``tool_call`` activity that runs them.

Importing this package registers the built-in tools, so ``known_tools()`` and
``tool_catalog()`` work without constructing anything.
"""

# Importing the built-in tools registers them.
from activities.tools import http_request, web_search  # noqa: F401
from activities.tools.activity import ToolActivities
from activities.tools.registry import ToolContext, ToolSpec, known_tools, tool, tool_catalog

__all__ = [
    "ToolActivities",
    "ToolContext",
    "ToolSpec",
    "known_tools",
    "tool",
    "tool_catalog",
]
