"""Settings read once from the environment and validated, so a bad value fails at start with a clear message."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from app.core.activations import DEFAULT_PASSES_CACHED
from app.core.datasets import DataSources

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Callback requests of the pages are a few kB, a training configuration less; uploads will ask for more.
DEFAULT_MAX_REQUEST_BYTES = 1_000_000


class SettingsError(ValueError):
    """A setting in the environment has a value the application cannot use."""


def _int_setting(env: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    raw = env.get(key, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{key} must be an integer, got {raw!r}") from exc
    if not low <= value <= high:
        raise SettingsError(f"{key} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the application reads from its environment.

    Attributes:
        model_store: folder with one sub-folder per model (``MODEL_STORE``).
        host, port: where the development server listens (``HOST``, ``PORT``).
        state_dir: folder for shared state every worker sees: job store, caches (``STATE_DIR``).
        redis_url: when set, jobs run on Celery with this Redis broker (``REDIS_URL``).
        activation_cache_size: forward passes kept per process (``ACTIVATION_CACHE_SIZE``).
        auth_users: ``user:password`` pairs, comma separated; empty means no login (``AUTH_USERS``).
        fashion_mnist_dir: Debian's Fashion-MNIST IDX folder (``FASHION_MNIST_DIR``).
        keras_home: Keras' cache folder, where full MNIST's ``datasets/mnist.npz`` is looked for (``KERAS_HOME``).
        max_request_bytes: the largest request body accepted; larger ones get 413 unread (``MAX_REQUEST_BYTES``).
    """

    model_store: Path
    host: str
    port: int
    state_dir: Path
    redis_url: str
    activation_cache_size: int
    auth_users: dict[str, str]
    fashion_mnist_dir: Path = DataSources.fashion_mnist_dir
    keras_home: Path = DataSources.keras_home
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES

    @property
    def data_sources(self) -> DataSources:
        """Where the named training datasets are read from."""
        return DataSources(fashion_mnist_dir=self.fashion_mnist_dir, keras_home=self.keras_home)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read and validate the settings from ``env`` (default: ``os.environ``)."""
        env = dict(os.environ if env is None else env)
        users: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in env.get("AUTH_USERS", "").split(","))):
            user, sep, password = pair.partition(":")
            if not sep or not user or not password:
                raise SettingsError("AUTH_USERS must look like 'alice:secret,bob:other'")
            users[user] = password
        return cls(
            model_store=Path(env.get("MODEL_STORE") or PROJECT_ROOT / "model_store").resolve(),
            host=env.get("HOST") or "127.0.0.1",
            port=_int_setting(env, "PORT", 8050, 1, 65535),
            state_dir=Path(env.get("STATE_DIR") or PROJECT_ROOT / "var").resolve(),
            redis_url=env.get("REDIS_URL", ""),
            activation_cache_size=_int_setting(env, "ACTIVATION_CACHE_SIZE", DEFAULT_PASSES_CACHED, 1, 100_000),
            auth_users=users,
            fashion_mnist_dir=Path(env.get("FASHION_MNIST_DIR") or DataSources.fashion_mnist_dir),
            keras_home=Path(env.get("KERAS_HOME") or DataSources.keras_home),
            max_request_bytes=_int_setting(env, "MAX_REQUEST_BYTES", DEFAULT_MAX_REQUEST_BYTES, 10_000, 1_000_000_000),
        )
