"""The process-wide objects of one app (settings, model store, test-set statistics, your own images, the job runner,
gradient models, feature jobs), built once by :func:`app.main.create_app` and handed to whatever needs them.

They hold only caches (bounded, keyed by model version), configuration and connections, never user state: every
worker process builds its own and they agree because they read the same files and the same job store. Each object
is built on first use, so a process that never opens a model (gunicorn's master, the CLI's ``--help``) loads no
TensorFlow.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from flask import current_app

from app.config import Settings
from app.core.attribution import GradientModelCache
from app.core.errors import ExplorerError
from app.core.statistics import StatisticsCache
from app.core.store import ModelStore, default_model
from app.core.user_images import UserImageStore
from app.jobs.engines import make_layer_launcher, make_runner
from app.jobs.features import FeatureJobs
from app.jobs.runner import JobRunner
from app.jobs.statistics import StatisticsJobs
from app.jobs.store import JobStore

# Where a Flask app keeps its context (``server.extensions``).
EXTENSION = "cnn_activation_explorer"
T = TypeVar("T")
logger = logging.getLogger(__name__)


class AppContext:
    """What the pages, the API, the CLI and the gunicorn hooks share in one process, built from ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, Any] = {}
        # Reentrant: building one object may ask for another (the job runner needs the user images).
        self._lock = threading.RLock()
        self._default_model_opened = threading.Event()

    @classmethod
    def from_env(cls) -> AppContext:
        """The context of the settings the environment gives (see :mod:`app.config`)."""
        return cls(Settings.from_env())

    def _once(self, name: str, build: Callable[[], T]) -> T:
        # Built under a lock: two threads' first requests would otherwise build two stores with two caches.
        if name not in self._built:
            with self._lock:
                if name not in self._built:
                    self._built[name] = build()
        return self._built[name]

    def open_default_model(self) -> None:
        """Open the model a page shows when its link names none (``mnist-cnn``, else the store's first): its probe
        traced and compiled and its first view run (:meth:`ModelStore.open_folder`), so that a newcomer's first
        grid waits for none of it. :attr:`default_model_opened` is set once done, or once it failed."""
        try:
            name = default_model(self.store.names())
            if name is not None:
                self.store.get(name)
        except (ExplorerError, OSError) as exc:
            logger.info("the default model was not opened ahead: %s", exc)
        finally:
            self._default_model_opened.set()

    def open_default_model_in_background(self) -> threading.Thread:
        """:meth:`open_default_model` in a daemon thread, while the server already answers (``make run``)."""
        thread = threading.Thread(target=self.open_default_model, name="open-default-model", daemon=True)
        thread.start()
        return thread

    @property
    def default_model_opened(self) -> bool:
        """Whether the default model was opened ahead (or failed to be): a first view then waits for no set-up."""
        return self._default_model_opened.is_set()

    @property
    def store(self) -> ModelStore:
        """The model store, cleared of temporary folders that killed saves left behind."""

        def build() -> ModelStore:
            current = self.settings
            store = ModelStore(current.model_store, activation_cache_bytes=current.activation_cache_bytes,
                               test_set_max_bytes=current.test_set_max_bytes, limits=current.model_limits)
            store.remove_stale_temporaries()
            return store

        return self._once("store", build)

    @property
    def statistics(self) -> StatisticsCache:
        """Whole-test-set statistics (class means, top units) shared by the pages and the API: kept in
        ``STATE_DIR/statistics`` for every worker, computed by background jobs when a pass over the test set is
        too costly for a request."""
        return self._once("statistics", lambda: StatisticsCache(max_bytes=self.settings.statistics_cache_bytes,
                                                                shared=self.statistics_jobs,
                                                                in_request_flops=self.settings.in_request_flops))

    @property
    def statistics_jobs(self) -> StatisticsJobs:
        """The background jobs and stored results of whole-test-set statistics."""
        return self._once("statistics_jobs", lambda: StatisticsJobs(self.settings.state_dir,
                                                                    self.settings.model_store,
                                                                    make_layer_launcher(self.settings)))

    @property
    def user_images(self) -> UserImageStore:
        """The drawn and uploaded images of this instance, in ``STATE_DIR/user_images`` (every worker sees them)."""
        return self._once("user_images", lambda: UserImageStore(self.settings.user_images_dir,
                                                                self.settings.user_images_kept))

    @property
    def job_runner(self) -> JobRunner:
        """The job runner: embedded or Celery (see :mod:`app.jobs.engines`), checking a probe image against
        :attr:`user_images`."""
        return self._once("job_runner", lambda: make_runner(self.settings, self.user_images))

    @property
    def job_store(self) -> JobStore:
        """The job store of :attr:`job_runner`."""
        return self.job_runner.store

    @property
    def gradient_models(self) -> GradientModelCache:
        """Gradient models (attribution, single-unit feature visualisation) of the last few opened model versions."""
        return self._once("gradient_models", lambda: GradientModelCache(limits=self.settings.model_limits))

    @property
    def feature_jobs(self) -> FeatureJobs:
        """Whole-layer feature visualisations, stored in ``STATE_DIR`` and computed by background processes."""
        return self._once("feature_jobs", lambda: FeatureJobs(self.settings.state_dir, self.settings.model_store,
                                                              make_layer_launcher(self.settings)))


def install(server: Any, context: AppContext) -> None:
    """Make ``context`` the one the Flask app ``server`` serves with (a test replaces it after changing the
    environment)."""
    server.extensions[EXTENSION] = context


def of_server(server: Any) -> AppContext:
    """The context the Flask app ``server`` serves with."""
    return server.extensions[EXTENSION]


def app_context() -> AppContext:
    """The context of the Flask app handling the current request (or in an app context a test pushed)."""
    return current_app.extensions[EXTENSION]
