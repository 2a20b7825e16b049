"""gunicorn's settings: TensorFlow's pools from the environment, else every core."""

import os

from app import gunicorn_conf


def test_tf_pools_default_to_every_core_and_follow_the_environment():
    cores = os.cpu_count() or 1
    assert gunicorn_conf.tf_pool_sizes({}) == (cores, cores)
    assert gunicorn_conf.tf_pool_sizes({"TF_INTRA_OP_THREADS": "1", "TF_INTER_OP_THREADS": "2"}) == (1, 2)


def test_the_server_reads_requests_in_an_event_loop_and_runs_the_app_in_threads():
    from gunicorn.config import Config
    from gunicorn.workers.gasgi import ASGIWorker

    from app.serving.front import Worker

    config = Config()
    config.set("worker_class", gunicorn_conf.worker_class)

    assert config.worker_class is Worker and issubclass(Worker, ASGIWorker)
    assert Worker.check_config(config, None) is None  # THREADS sizes the app's pool: nothing to warn about
