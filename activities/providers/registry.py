"""Providers by name, and pure helpers about provider names (``resolve_model`` re-exported).

This module imports no SDK, so the API and validators can call ``resolve_model`` and
``known_providers`` cheaply; SDK-backed providers are imported only by ``load_builtin``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from activities.providers.completion import Provider
from promptpilot.settings import Settings
from schema.model_ref import resolve_model

__all__ = [
    "BUILTIN_PROVIDERS", "COMPATIBLE", "ProviderFactory", "factory_for", "known_providers",
    "load_builtin", "providers_missing_credentials", "register", "resolve_model",
]

ProviderFactory = Callable[[str, Settings], Provider]

BUILTIN_PROVIDERS = ("openai", "anthropic", "offline")
COMPATIBLE = "compatible"
"""Registry key of the factory used for every name in ``settings.llm.compatible``."""

_FACTORIES: dict[str, ProviderFactory] = {}
_BUILTIN_MODULES = (
    "activities.providers.openai_provider",
    "activities.providers.anthropic_provider",
    "activities.providers.offline",
)


def register(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    """Decorator: make ``factory(name, settings)`` the builder of provider ``name``."""

    def decorate(factory: ProviderFactory) -> ProviderFactory:
        _FACTORIES[name] = factory
        return factory

    return decorate


def load_builtin() -> None:
    """Import the built-in provider modules so they register themselves."""
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)


def factory_for(name: str, settings: Settings) -> ProviderFactory | None:
    """The factory of a provider name, or None when no registry entry or setting knows it."""
    if name in settings.llm.compatible:
        return _FACTORIES.get(COMPATIBLE)
    return _FACTORIES.get(name) if name != COMPATIBLE else None


def known_providers(settings: Settings) -> set[str]:
    """Every provider name this deployment can call."""
    return set(BUILTIN_PROVIDERS) | set(settings.llm.compatible)


def providers_missing_credentials(settings: Settings) -> set[str]:
    """Built-in providers that need a key and have none configured."""
    keys = {"openai": settings.llm.openai.api_key, "anthropic": settings.llm.anthropic.api_key}
    return {name for name, key in keys.items() if key is None or not key.get_secret_value()}
