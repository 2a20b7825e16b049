"""Training jobs: a shared job store and a job runner, each an embedded default and a scale-out engine.

- :mod:`~app.jobs.records`: the job record, its statuses and errors;
- :mod:`~app.jobs.store`: the rules every store follows; :mod:`~app.jobs.sqlite_store` and
  :mod:`~app.jobs.redis_store` are its engines;
- :mod:`~app.jobs.runner`: starting and stopping jobs (a fresh process, or Celery);
- :mod:`~app.jobs.worker`: what runs one job; :mod:`~app.jobs.celery_worker` is Celery's entry point;
- :mod:`~app.jobs.engines`: the one place the engines are chosen from the settings.
"""
