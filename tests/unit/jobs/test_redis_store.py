"""app.jobs.redis_store.RedisJobStore specifics, against a real redis-server: its key layout under a prefix, the
"active" key claimed on create and released when the job ends, prefixes keeping instances apart, and reading
hashes written by other versions. The store rules shared with SQLite are in test_store.py."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
import redis

from app.jobs.records import JobRunning, encode_probe
from app.jobs.redis_store import RedisJobStore
from tests.services_support import redis_server

CONFIG = {"name": "m1", "epochs": 2, "layers": [{"filters": 8}]}


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture
def client(redis_url):
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def store(redis_url):
    return RedisJobStore(redis_url, prefix=f"t{uuid.uuid4().hex[:8]}")


def test_the_url_names_the_prefix_only_when_it_is_not_the_default(redis_url):
    assert RedisJobStore(redis_url).url == redis_url
    assert RedisJobStore(redis_url, prefix="other").url == f"{redis_url}#other"


def test_create_writes_the_job_hash_the_sorted_set_and_the_active_key(store, client):
    job = store.create(CONFIG, started_by="ann")
    p = store.prefix
    assert client.get(f"{p}:active") == job.id.encode()
    assert client.zrange(f"{p}:jobs", 0, -1, withscores=True) == [(job.id.encode(), job.created)]
    fields = {k.decode(): json.loads(v) for k, v in client.hgetall(f"{p}:job:{job.id}").items()}
    assert fields["config"] == CONFIG and fields["status"] == "queued" and fields["started_by"] == "ann"
    assert fields["model"] == "m1" and fields["saved"] is False


def test_ending_the_job_releases_the_active_key_and_a_new_job_takes_it(store, client):
    job = store.create(CONFIG)
    assert store.claim(job.id, pid=1)
    assert client.get(f"{store.prefix}:active") == job.id.encode()  # running still holds it
    assert store.finish(job.id, "succeeded", saved=True)
    assert client.get(f"{store.prefix}:active") is None
    assert not store.finish(job.id, "failed")  # already ended: nothing changes
    assert store.get(job.id).status == "succeeded"
    second = store.create({**CONFIG, "name": "m2"})
    assert client.get(f"{store.prefix}:active") == second.id.encode()


def test_an_active_key_left_pointing_at_an_ended_or_missing_job_does_not_block_a_start(store, client):
    client.set(f"{store.prefix}:active", "gone")
    first = store.create(CONFIG)
    store.update(first.id, status="failed")  # ended without the release (a plain update)
    assert client.get(f"{store.prefix}:active") == first.id.encode()
    second = store.create({**CONFIG, "name": "m2"})
    assert client.get(f"{store.prefix}:active") == second.id.encode()
    with pytest.raises(JobRunning):
        store.create({**CONFIG, "name": "m3"})


def test_ending_a_job_that_is_not_the_active_one_leaves_the_active_key_alone(store, client):
    old = store.create(CONFIG)
    client.set(f"{store.prefix}:active", "someone-else")
    assert store.finish(old.id, "stopped")
    assert client.get(f"{store.prefix}:active") == b"someone-else"


def test_prefixes_keep_two_stores_on_one_redis_apart(redis_url):
    a = RedisJobStore(redis_url, prefix=f"a{uuid.uuid4().hex[:8]}")
    b = RedisJobStore(redis_url, prefix=f"b{uuid.uuid4().hex[:8]}")
    job_a = a.create(CONFIG)
    job_b = b.create(CONFIG)  # a's active job does not block b
    assert [j.id for j in a.list()] == [job_a.id] and [j.id for j in b.list()] == [job_b.id]
    assert b._load(job_a.id) is None


def test_epochs_and_probes_live_in_per_job_hashes(store, client):
    job = store.create(CONFIG)
    for epoch in (10, 9, 2):  # numeric order, not string order
        store.add_epoch(job.id, {"epoch": epoch, "loss": epoch / 10})
    assert [row["epoch"] for row in store.epochs(job.id)] == [2, 9, 10]
    assert json.loads(client.hget(f"{store.prefix}:job:{job.id}:epochs", "9")) == {"epoch": 9, "loss": 0.9}
    store.add_probe(job.id, 10, "conv", 3, np.ones((2, 2, 1)), np.array([0.5, 0.5]))
    store.add_probe(job.id, 9, "conv", 3, np.ones((2, 2, 1)), np.array([0.5, 0.5]))
    assert store.probe_epochs(job.id) == [9, 10]
    assert client.hget(f"{store.prefix}:job:{job.id}:probes", "10") == encode_probe(
        "conv", 3, np.ones((2, 2, 1)), np.array([0.5, 0.5]))


def test_a_hash_with_unknown_or_missing_fields_reads_with_defaults(store, client):
    client.hset(f"{store.prefix}:job:old", mapping={
        "id": json.dumps("old"), "status": json.dumps("succeeded"), "config": json.dumps({}),
        "model": json.dumps("m"), "created": json.dumps(1.0), "colour": json.dumps("from a newer version"),
    })
    client.zadd(f"{store.prefix}:jobs", {"old": 1.0})
    old = store.get("old")
    assert (old.status, old.engine, old.saved, old.info, old.started_by) == ("succeeded", "embedded", False, {}, None)
    assert [j.id for j in store.list()] == ["old"]


def test_update_stores_each_value_as_json(store, client):
    job = store.create(CONFIG)
    store.update(job.id, info={"classes": ["a", "b"]}, eta_seconds=12.5, stop_requested=True)
    raw = client.hmget(f"{store.prefix}:job:{job.id}", "info", "eta_seconds", "stop_requested")
    assert [json.loads(v) for v in raw] == [{"classes": ["a", "b"]}, 12.5, True]
    read = store.get(job.id)
    assert read.info == {"classes": ["a", "b"]} and read.eta_seconds == 12.5 and read.stop_requested is True


def test_update_of_an_unknown_job_leaves_it_unknown(store):
    """(It wrote a partial hash, which get() then failed to read with a TypeError: a 500 instead of a 404.)"""
    from app.jobs.records import JobNotFound

    store.update("missing", heartbeat=1.0)
    with pytest.raises(JobNotFound):
        store.get("missing")
