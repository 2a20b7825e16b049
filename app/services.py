"""Process-wide objects, created on first use: the settings, the model store, the test-set statistics and the job
runner. The only module-level state of the application lives here.

These hold only caches (bounded, keyed by model version), configuration and connections, never user state: every
worker process builds its own and they agree because they read the same files and the same job store.
"""

from __future__ import annotations

import functools

from app.config import Settings
from app.core.attribution import GradientModelCache
from app.core.statistics import StatisticsCache
from app.core.store import ModelStore
from app.core.user_images import UserImageStore
from app.jobs.engines import make_runner
from app.jobs.features import FeatureJobs
from app.jobs.runner import JobRunner
from app.jobs.store import JobStore


@functools.cache
def settings() -> Settings:
    """The settings read from the environment at first use."""
    return Settings.from_env()


@functools.cache
def store() -> ModelStore:
    """The model store of :func:`settings`, cleared of temporary folders that killed saves left behind."""
    current = settings()
    store = ModelStore(current.model_store, activation_cache_bytes=current.activation_cache_bytes,
                       test_set_max_bytes=current.test_set_max_bytes, limits=current.model_limits)
    store.remove_stale_temporaries()
    return store


@functools.cache
def statistics() -> StatisticsCache:
    """Whole-test-set statistics (class means, top units) shared by the pages and the API of this process."""
    return StatisticsCache(max_bytes=settings().statistics_cache_bytes)


@functools.cache
def job_runner() -> JobRunner:
    """The job runner of :func:`settings`: embedded or Celery (see :mod:`app.jobs.engines`), checking a probe
    image ``u:<id>`` against :func:`user_images`."""
    runner = make_runner(settings())
    runner.user_images = user_images()
    return runner


@functools.cache
def user_images() -> UserImageStore:
    """The drawn and uploaded images of this instance, in ``STATE_DIR/user_images`` (every worker sees them)."""
    current = settings()
    return UserImageStore(current.user_images_dir, current.user_images_kept)


@functools.cache
def gradient_models() -> GradientModelCache:
    """Gradient models (attribution, single-unit feature visualisation) of the last few opened model versions."""
    return GradientModelCache(limits=settings().model_limits)


@functools.cache
def feature_jobs() -> FeatureJobs:
    """Whole-layer feature visualisations, stored in ``STATE_DIR`` and computed by background processes."""
    current = settings()
    return FeatureJobs(current.state_dir, current.model_store)


def job_store() -> JobStore:
    """The job store of :func:`job_runner`."""
    return job_runner().store


def reset() -> None:
    """Forget everything above (tests that change the environment call this)."""
    for cached in (feature_jobs, gradient_models, job_runner, statistics, store, user_images, settings):
        cached.cache_clear()
