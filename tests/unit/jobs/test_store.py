"""Job-store semantics, run against both engines: SQLite (embedded) and a real redis-server (scale-out)."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from app.jobs.engines import open_store
from app.jobs.records import Job, JobNotActive, JobNotFound, JobRunning, decode_probe, encode_probe
from app.jobs.redis_store import RedisJobStore
from app.jobs.sqlite_store import SqliteJobStore
from tests.services_support import redis_server

CONFIG = {"name": "m1", "epochs": 2}


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
def make_store(request, tmp_path):
    """A factory of empty stores of one engine (each call with the same arguments opens the same store)."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"

    def make(**kwargs):
        if request.param == "sqlite":
            return SqliteJobStore(tmp_path / "jobs.sqlite3", **kwargs)
        return RedisJobStore(request.getfixturevalue("redis_url"), prefix=prefix, **kwargs)

    return make


def test_create_get_list_and_one_active_job(make_store):
    store = make_store()
    job = store.create(CONFIG)
    assert job.status == "queued" and job.model == "m1" and job.active
    assert store.get(job.id).config == CONFIG
    with pytest.raises(JobRunning) as refused:
        store.create({**CONFIG, "name": "m2"})
    assert refused.value.job.id == job.id and "already running" in str(refused.value)
    assert store.finish(job.id, "succeeded", saved=True)
    second = store.create({**CONFIG, "name": "m2"})
    assert [j.id for j in store.list()] == [second.id, job.id]
    assert store.get(job.id).saved is True and store.get(job.id).finished is not None
    assert store.active().id == second.id and store.current().id == second.id


def test_a_job_records_who_started_it(make_store):
    store = make_store()
    job = store.create(CONFIG, started_by="alice")
    assert job.started_by == "alice" and store.get(job.id).started_by == "alice"
    with pytest.raises(JobRunning, match=r"already running \(job \w+, model 'm1', queued, started by alice\)"):
        store.create(CONFIG)  # the refusal says whom to ask
    assert store.get(job.id).to_dict()["started_by"] == "alice"
    store.finish(job.id, "succeeded")
    assert store.create({**CONFIG, "name": "m2"}).started_by is None  # unknown: an instance without login


def test_current_is_latest_when_idle_and_none_when_empty(make_store):
    store = make_store()
    assert store.current() is None and store.active() is None
    job = store.create(CONFIG)
    store.finish(job.id, "failed", error="boom")
    assert store.current().id == job.id and store.active() is None
    assert store.get(job.id).error == "boom"


def test_claim_once_then_progress_and_finish_once(make_store):
    store = make_store()
    job = store.create(CONFIG)
    assert store.claim(job.id, pid=1234)
    assert not store.claim(job.id, pid=999)  # a second worker must not run it again
    running = store.get(job.id)
    assert running.status == "running" and running.pid == 1234 and running.started is not None
    store.update(job.id, epochs_total=2, batches_per_epoch=10, epoch=2, batch=5, eta_seconds=1.5)
    running = store.get(job.id)
    assert (running.batches_done, running.batches_total, running.fraction) == (15, 20, 0.75)
    assert running.to_dict()["batches_done"] == 15
    assert store.finish(job.id, "succeeded")
    assert not store.finish(job.id, "failed", error="late")  # the first outcome wins
    assert store.get(job.id).status == "succeeded" and store.get(job.id).error is None
    with pytest.raises(ValueError):
        store.finish(job.id, "running")


def test_stop_queued_job_ends_it_and_stop_running_job_sets_flags(make_store):
    store = make_store()
    queued = store.create(CONFIG)
    assert store.request_stop(queued.id).status == "stopped"
    assert not store.claim(queued.id, pid=1)
    running = store.create(CONFIG)
    store.claim(running.id, pid=1)
    flagged = store.request_stop(running.id, save_partial=True)
    assert flagged.status == "running" and flagged.stop_requested and flagged.save_partial
    store.finish(running.id, "stopped")
    with pytest.raises(JobNotActive):
        store.request_stop(running.id)
    with pytest.raises(JobNotFound):
        store.request_stop("nope")


def test_dead_running_job_is_reaped_and_stops_blocking(make_store):
    store = make_store(stale_after=5)
    job = store.create(CONFIG)
    store.claim(job.id, pid=1)
    store.update(job.id, heartbeat=time.time() - 1)
    assert store.get(job.id).status == "running"  # a recent heartbeat keeps it alive
    store.update(job.id, heartbeat=time.time() - 6)
    next_job = store.create({**CONFIG, "name": "m2"})  # the dead one no longer blocks
    dead = store.get(job.id)
    assert dead.status == "failed" and "no heartbeat" in dead.error
    assert next_job.status == "queued"


def test_queued_job_nobody_takes_times_out(make_store):
    store = make_store(queue_timeout=0.2)
    job = store.create(CONFIG)
    time.sleep(0.3)
    reaped = store.get(job.id)
    assert reaped.status == "failed" and "no worker picked the job up" in reaped.error


def test_epochs_and_probes_round_trip_in_order(make_store):
    store = make_store()
    job = store.create(CONFIG)
    for epoch in (2, 1, 3):  # stored out of order, read in epoch order
        store.add_epoch(job.id, {"epoch": epoch, "loss": 1.0 / epoch})
    assert [row["epoch"] for row in store.epochs(job.id)] == [1, 2, 3]
    assert store.epochs(job.id)[1]["loss"] == 0.5
    activations = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    store.add_probe(job.id, 1, "Conv2D_1", 7, activations, np.array([0.25, 0.75]))
    store.add_probe(job.id, 3, "Conv2D_1", 7, activations * 2, np.array([0.5, 0.5]))
    assert store.probe_epochs(job.id) == [1, 3]
    probe = store.probe(job.id, 3)
    assert probe["layer"] == "Conv2D_1" and probe["image"] == 7
    np.testing.assert_array_equal(probe["activations"], activations * 2)
    assert probe["probabilities"].dtype == np.float32 and store.probe(job.id, 2) is None
    assert store.epochs("other") == [] and store.probe_epochs("other") == []


def test_get_unknown_job_and_unknown_field(make_store):
    store = make_store()
    with pytest.raises(JobNotFound):
        store.get("missing")
    job = store.create(CONFIG)
    with pytest.raises(ValueError):
        store.update(job.id, colour="red")


def test_concurrent_starts_admit_exactly_one(make_store):
    stores = [make_store() for _ in range(6)]  # separate connections, as separate web workers have
    barrier = threading.Barrier(len(stores))
    outcomes: list[str] = []

    def start(store):
        barrier.wait()
        try:
            store.create(CONFIG)
            outcomes.append("created")
        except JobRunning:
            outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] + ["refused"] * 5
    assert len(stores[0].list()) == 1


def test_open_store_reaches_the_same_data(make_store):
    store = make_store()
    job = store.create(CONFIG)
    again = open_store(store.url)
    assert type(again) is type(store) and again.get(job.id).id == job.id


def test_open_store_rejects_unknown_address():
    with pytest.raises(ValueError, match="not a job-store address"):
        open_store("ftp://x")


def test_probe_codec_refuses_nothing_it_wrote():
    data = encode_probe("Dense_1", 3, np.ones((5,)), np.array([1.0]))
    decoded = decode_probe(data)
    assert decoded["layer"] == "Dense_1" and decoded["activations"].shape == (5,)


def test_job_progress_before_training_and_after_success():
    job = Job("a", "queued", {}, "m")
    assert (job.batches_done, job.fraction, job.elapsed_seconds) == (0, 0.0, None)
    job.status = "succeeded"
    assert job.fraction == 1.0


def test_sqlite_store_upgrades_an_older_schema(tmp_path):
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:  # a jobs table from a version without the "saved" and "info" fields
        db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, status TEXT, config TEXT, model TEXT, created REAL)")
        db.execute("INSERT INTO jobs VALUES ('old1', 'succeeded', '{}', 'm', 1.0)")
    store = SqliteJobStore(path)
    old = store.get("old1")
    assert old.status == "succeeded" and old.saved is False and old.info == {} and old.engine == "embedded"
    assert old.to_dict()["batches_total"] == 0 and old.started is None and old.started_by is None
    assert store.create(CONFIG).status == "queued"


def test_a_later_stop_adds_intent_but_never_takes_it_back(make_store):
    store = make_store()
    job = store.create(CONFIG)
    store.claim(job.id, pid=1)
    assert store.request_stop(job.id, save_partial=True).save_partial
    assert store.request_stop(job.id).save_partial  # a double click without the switch keeps the model
    other = make_store()  # another viewer, in another worker
    assert other.request_stop(job.id, save_partial=False).save_partial


def test_an_unusable_sqlite_store_says_so_instead_of_crashing(tmp_path):
    from app.jobs.records import JobStoreUnavailable

    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(JobStoreUnavailable, match="job store"):
        SqliteJobStore(path).list(1)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(JobStoreUnavailable, match="folder"):
        SqliteJobStore(blocker / "state" / "jobs.sqlite3")


def test_a_stopped_redis_says_so_instead_of_crashing():
    from app.jobs.records import JobStoreUnavailable
    from tests.services_support import free_port

    store = RedisJobStore(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(JobStoreUnavailable, match="Redis"):
        store.list(1)
    with pytest.raises(JobStoreUnavailable):
        store.create(CONFIG)
