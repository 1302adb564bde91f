"""Custom Temporal search attributes, so runs can be filtered in the Temporal UI and CLI.

e.g. ``temporal workflow list --namespace dev --query 'PromptPilotSlug="feed-discovery"'``
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

# Name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` takes them.
SEARCH_ATTRIBUTES: dict[str, str] = {
    "PromptPilotSlug": "Keyword",
    "PromptPilotEnvironment": "Keyword",
    "PromptPilotTrigger": "Keyword",
    "PromptPilotVersion": "Int",
}

SA_SLUG = SearchAttributeKey.for_keyword("PromptPilotSlug")
SA_ENVIRONMENT = SearchAttributeKey.for_keyword("PromptPilotEnvironment")
SA_TRIGGER = SearchAttributeKey.for_keyword("PromptPilotTrigger")
SA_VERSION = SearchAttributeKey.for_int("PromptPilotVersion")
