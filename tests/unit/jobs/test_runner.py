"""app.jobs.runner: what start and submit check and record before a worker is launched (launching is replaced by a
recorder, so nothing trains), what a launch failure leaves behind, stop and change_probe, how the embedded
runner's watcher records a worker process that died, and the Celery runner's message on a real redis-server."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app.core.datasets import DataSources
from app.core.store import ModelExists
from app.core.training import ConfigError, parse_config
from app.jobs.records import JobNotActive, JobRunning
from app.jobs.runner import LOG_TAIL_CHARS, CeleryRunner, EmbeddedRunner
from app.jobs.sqlite_store import SqliteJobStore

QUICK = {"name": "quick", "dataset": "mnist-subset", "conv_layers": [{"filters": 2}], "dense_layers": [],
         "max_train": 128, "max_test": 16, "epochs": 1, "batch_size": 64}


@pytest.fixture
def launched(monkeypatch):
    """The jobs handed to EmbeddedRunner._launch, which no longer starts a process."""
    jobs = []
    monkeypatch.setattr(EmbeddedRunner, "_launch", lambda _runner, job: jobs.append(job))
    return jobs


@pytest.fixture
def runner(tmp_path):
    (tmp_path / "models").mkdir()
    store = SqliteJobStore(tmp_path / "state" / "jobs.sqlite3")
    return EmbeddedRunner(store, tmp_path / "models", DataSources(data_dir=tmp_path / "data"), tmp_path / "logs")


def test_start_records_the_validated_config_as_a_queued_job_and_launches_it_once(runner, launched):
    job = runner.start(QUICK, started_by="ann")
    assert [j.id for j in launched] == [job.id]
    stored = runner.store.get(job.id)
    assert stored.status == "queued" and stored.engine == "embedded" and stored.started_by == "ann"
    assert stored.model == "quick" and stored.config == parse_config(QUICK).to_dict()
    assert stored.config["optimizer"] == "rmsprop"  # defaults filled in


def test_submit_records_without_launching_and_names_the_engine_asked_for(runner, launched):
    job = runner.submit(QUICK, engine="cli")
    assert launched == [] and runner.store.get(job.id).engine == "cli"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"name": "../escape"}, "invalid model name"),
        ({"colour": "red"}, "unknown settings: colour"),
        ({"dataset": "no-such-file.npz"}, "no-such-file"),
        ({"probe_image": "u:xyz"}, "is not an image id"),
        ({"dataset": "mnist", "max_train": None, "epochs": 200,
          "conv_layers": [{"filters": 512, "kernel": 3}] * 3, "dense_layers": [{"units": 4096}]},
         "the cap is 5,000,000"),
        ({"conv_layers": [{"filters": 2, "kernel": 11}] * 3}, "leaves no pixels"),
    ],
)
def test_a_bad_or_too_large_config_is_refused_and_nothing_is_recorded(runner, launched, change, message):
    with pytest.raises(ConfigError, match=message):
        runner.start({**QUICK, **change})
    assert launched == [] and runner.store.list() == []


def test_a_name_already_in_the_model_store_is_refused(runner, launched):
    (runner.model_store / "quick").mkdir()
    with pytest.raises(ModelExists, match="'quick' already exists"):
        runner.start(QUICK)
    assert runner.store.list() == []


def test_a_second_start_while_a_job_is_active_is_refused(runner, launched):
    first = runner.start(QUICK)
    with pytest.raises(JobRunning) as refused:
        runner.start({**QUICK, "name": "other"})
    assert refused.value.job.id == first.id and len(launched) == 1


def test_a_launch_that_fails_ends_the_job_as_failed_and_frees_the_runner(runner, monkeypatch):
    def broken(_runner, _job):
        raise OSError("no such interpreter")

    monkeypatch.setattr(EmbeddedRunner, "_launch", broken)
    with pytest.raises(OSError, match="no such interpreter"):
        runner.start(QUICK)
    [job] = runner.store.list()
    assert job.status == "failed" and job.error == "could not start the training job: no such interpreter"
    assert runner.store.active() is None


def test_stop_ends_a_queued_job_and_flags_a_running_one(runner, launched):
    queued = runner.start(QUICK)
    assert runner.stop(queued.id).status == "stopped"
    running = runner.start({**QUICK, "name": "second"})
    runner.store.claim(running.id, pid=1)
    stopping = runner.stop(running.id, save_partial=True)
    assert stopping.status == "running" and stopping.stop_requested and stopping.save_partial


def asked(job) -> dict:
    """The image and layer of the job's probe request (without its time)."""
    return {key: job.probe_request[key] for key in ("image", "layer")}


def test_change_probe_records_an_image_and_layer_of_the_run(runner, launched):
    job = runner.start({**QUICK, "conv_layers": [{"filters": 2}, {"filters": 2}], "probe_layer": "Conv2D_2"})
    runner.store.claim(job.id, pid=1)
    assert asked(runner.change_probe(job.id, 15)) == {"image": 15, "layer": "Conv2D_2"}
    assert asked(runner.change_probe(job.id, None, "Max_Pool_1")) == {"image": 15, "layer": "Max_Pool_1"}
    assert asked(runner.store.get(job.id)) == {"image": 15, "layer": "Max_Pool_1"}


def test_change_probe_without_a_chosen_layer_takes_the_first_one(runner, launched):
    job = runner.start(QUICK)
    runner.store.claim(job.id, pid=1)
    assert asked(runner.change_probe(job.id, 0)) == {"image": 0, "layer": "Conv2D_1"}


@pytest.mark.parametrize(
    ("image", "layer", "message"),
    [
        (16, None, "from 0 to 15"),  # max_test is 16
        (-1, None, "from 0 to 15"),
        (True, None, "from 0 to 15"),
        ("3", None, "from 0 to 15"),
        ("u:xyz", None, "is not an image id"),
        (0, "Conv2D_9", "layer must be one of Conv2D_1, Flatten, Dense_1"),
    ],
)
def test_change_probe_refuses_images_outside_the_test_set_and_unknown_layers(runner, launched, image, layer,
                                                                             message):
    job = runner.start(QUICK)
    runner.store.claim(job.id, pid=1)
    with pytest.raises(ConfigError, match=message):
        runner.change_probe(job.id, image, layer)
    assert runner.store.get(job.id).probe_request in (None, {})


def test_change_probe_of_an_ended_job_is_refused(runner, launched):
    job = runner.start(QUICK)
    runner.store.finish(job.id, "succeeded")
    with pytest.raises(JobNotActive):
        runner.change_probe(job.id, 1, "Conv2D_1")


def watch(runner, job_id: str, code: str):
    """Run ``code`` as the job's 'worker' and let the runner's watcher record how it ended."""
    runner.log_dir.mkdir(parents=True, exist_ok=True)
    log_path = runner.log_dir / f"{job_id}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([sys.executable, "-c", code], stdout=log, stderr=subprocess.STDOUT)
    runner._watch(job_id, process, log_path)
    return runner.store.get(job_id)


def test_a_worker_that_dies_without_an_outcome_fails_the_job_with_the_tail_of_its_log(runner, launched):
    job = runner.start(QUICK)
    ended = watch(runner, job.id, "import sys; print('x' * 3000); print('it broke'); sys.exit(3)")
    assert ended.status == "failed" and ended.error.startswith("the training process exited with code 3: ")
    assert ended.error.endswith("it broke") and "out of memory" not in ended.error
    tail = ended.error.removeprefix("the training process exited with code 3: ")
    assert len(tail) <= LOG_TAIL_CHARS


def test_a_worker_that_ran_out_of_memory_is_reported_as_such(runner, launched):
    job = runner.start(QUICK)
    ended = watch(runner, job.id, "import sys; print('tensorflow ResourceExhaustedError: OOM'); sys.exit(1)")
    assert ended.error.startswith("out of memory: the run needs more than the training memory limit; ")


def test_a_worker_that_recorded_its_outcome_is_left_as_it_said(runner, launched):
    job = runner.start(QUICK)
    code = (f"from app.jobs.sqlite_store import SqliteJobStore; "
            f"SqliteJobStore({str(runner.store.path)!r}).finish({job.id!r}, 'succeeded', saved=True)")
    ended = watch(runner, job.id, code)
    assert ended.status == "succeeded" and ended.error is None


def test_the_celery_runner_sends_the_job_id_to_the_broker(tmp_path):
    import base64

    import redis

    from tests.services_support import redis_server

    (tmp_path / "models").mkdir()
    with redis_server() as url:
        runner = CeleryRunner(SqliteJobStore(tmp_path / "jobs.sqlite3"), tmp_path / "models", DataSources(), url)
        job = runner.start(QUICK)
        assert runner.store.get(job.id).engine == "celery"
        messages = redis.Redis.from_url(url).lrange("celery", 0, -1)
    assert len(messages) == 1
    message = json.loads(messages[0])
    assert message["headers"]["task"] == "app.jobs.train"
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == [job.id]
