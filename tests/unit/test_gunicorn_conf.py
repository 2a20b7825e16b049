"""gunicorn's settings: TensorFlow's pools from the environment, else every core."""

import os

from app import gunicorn_conf


def test_tf_pools_default_to_every_core_and_follow_the_environment():
    cores = os.cpu_count() or 1
    assert gunicorn_conf.tf_pool_sizes({}) == (cores, cores)
    assert gunicorn_conf.tf_pool_sizes({"TF_INTRA_OP_THREADS": "1", "TF_INTER_OP_THREADS": "2"}) == (1, 2)
