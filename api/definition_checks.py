"""The checks a definition meets when it is saved, in one place: the API's create and update
routes and the offline `promptpilot validate` run the same ones."""

from __future__ import annotations

from typing import Any

from activities.providers.registry import known_providers
from activities.tools import known_tools
from activities.tools.addresses import literal_refusal
from definition.limits import check_definition_size
from definition.validation import parse_definition
from payloads.size_guard import template_limits
from promptpilot.settings import Settings
from schema.definition import WorkflowDefinition


def save_checks(settings: Settings, raw: Any, where: str = "") -> WorkflowDefinition:
    """The size limits, then `parse_definition` with this deployment's provider and tool
    catalog, feature flags, template limits and URL policy. Raises ``LimitExceeded`` (its
    pointer under ``where``) or ``DefinitionInvalid``; stored prompts and child workflows are
    checked by the routes. Saving, previewing an unsaved definition and a rerun's step
    overrides all meet these."""
    check_definition_size(raw, settings.limits, where)
    tools = [*known_tools(), *(f"mcp:{name}" for name in settings.mcp.servers)]
    return parse_definition(raw, known_providers(settings), tools=tools,
                            multi_model=settings.workflow.multi_model,
                            limits=template_limits(settings.limits),
                            url_refusal=None if settings.tools.http_allow_private
                            else literal_refusal)
