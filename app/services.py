"""Process-wide access to the settings and the model store, created on first use.

These hold only caches (bounded, keyed by model version) and configuration, never user state: every worker
process builds its own and they agree because they read the same files.
"""

from __future__ import annotations

import functools

from app.config import Settings
from app.core.store import ModelStore


@functools.cache
def settings() -> Settings:
    """The settings read from the environment at first use."""
    return Settings.from_env()


@functools.cache
def store() -> ModelStore:
    """The model store of :func:`settings`."""
    current = settings()
    return ModelStore(current.model_store, activation_cache_size=current.activation_cache_size)


def reset() -> None:
    """Forget the settings and store (tests that change the environment call this)."""
    store.cache_clear()
    settings.cache_clear()
