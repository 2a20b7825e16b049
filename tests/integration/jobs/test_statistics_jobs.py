"""Whole-test-set statistics computed by background processes: a request that may not compute a pass over the test
set itself gets the job's progress (202 on the API), the job's result equals the one a request computes, every web
worker reads the one stored result, and a job killed halfway leaves no result behind."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from app.core.errors import StillComputing
from app.core.statistics import WHOLE_MODEL, StatisticsCache
from app.core.store import ModelStore
from app.jobs.background import read_json
from app.jobs.statistics import StatisticsJobs
from tests.conftest import build_tiny_model, tiny_test_set, write_model_folder
from tests.statistics_jobs_support import answer_when_done, kill_halfway, wait_for


@pytest.fixture
def store(tmp_path):
    images, labels = tiny_test_set(n=300)
    write_model_folder(tmp_path / "store", "tiny", build_tiny_model(), images, labels)
    return ModelStore(tmp_path / "store")


def numbers(kind: str, statistic) -> np.ndarray:
    """The main array of a statistic of ``kind``."""
    return {"top-mean": lambda: statistic.values, "means": lambda: statistic.means}.get(
        kind, lambda: np.asarray(statistic))()


@pytest.mark.parametrize("kind", ["top-mean", "means", "distances", "range", "predictions"])
def test_a_job_computes_what_a_request_computes_and_a_second_worker_reads_it_without_a_job(store, tmp_path, kind):
    loaded = store.get("tiny")
    layer = loaded.engine.layers[0].name
    jobs = StatisticsJobs(tmp_path / "state", tmp_path / "store")
    background = StatisticsCache(shared=jobs, in_request_flops=0)  # no pass is cheap enough for a request
    ask = {"top-mean": lambda cache: cache.top_units(loaded, layer),
           "means": lambda cache: cache.class_means(loaded, layer),
           "distances": lambda cache: cache.class_distances(loaded, layer),
           "range": lambda cache: cache.layer_range(loaded, layer),
           "predictions": lambda cache: cache.predictions(loaded)}[kind]

    with pytest.raises(StillComputing) as waiting:
        ask(background)
    assert waiting.value.progress["status"] in ("running", "queued")
    assert f"{'' if kind == 'predictions' else f' of {layer}'} over 300 test images in the background" in str(
        waiting.value)
    from_job = wait_for(lambda: ask(background))
    in_request = ask(StatisticsCache())
    if kind == "top-mean":
        np.testing.assert_array_equal(from_job.indices, in_request.indices)
        np.testing.assert_array_equal(from_job.values, in_request.values)
        np.testing.assert_array_equal(from_job.peaks, in_request.peaks)
        np.testing.assert_array_equal(from_job.positions, in_request.positions)
    elif kind == "means":
        np.testing.assert_array_equal(from_job.means, in_request.means)
        np.testing.assert_array_equal(from_job.counts, in_request.counts)
    else:
        np.testing.assert_array_equal(np.asarray(from_job), np.asarray(in_request))

    # another web worker: its own cache and jobs object on the same state folder reads the stored result
    other = StatisticsCache(shared=StatisticsJobs(tmp_path / "state", tmp_path / "store"), in_request_flops=0)
    result = jobs.path(loaded.name, loaded.version, WHOLE_MODEL if kind == "predictions" else layer, kind)
    progress, lock, _ = jobs.job_files(result)
    progress.unlink(missing_ok=True)
    np.testing.assert_array_equal(numbers(kind, ask(other)), numbers(kind, from_job))
    assert not lock.exists() and not progress.exists()  # no second job


def test_a_job_killed_halfway_leaves_no_result_and_says_it_failed(tmp_path):
    images, labels = tiny_test_set(n=20_000)  # long enough a pass to be killed in the middle of
    write_model_folder(tmp_path / "store", "tiny", build_tiny_model(), images, labels)
    loaded = ModelStore(tmp_path / "store").get("tiny")
    layer = loaded.engine.layers[0].name
    jobs = StatisticsJobs(tmp_path / "state", tmp_path / "store")
    cache = StatisticsCache(shared=jobs, in_request_flops=0)
    with pytest.raises(StillComputing):
        cache.class_means(loaded, layer)
    result = jobs.path(loaded.name, loaded.version, layer, "means")
    progress, lock, _ = jobs.job_files(result)
    kill_halfway(progress, lock)
    assert not result.exists()
    assert not [path for path in result.parent.iterdir() if path.suffix == ".npz"]
    assert "exited" in (read_json(progress) or {}).get("error", "")
    with pytest.raises(Exception, match="failed"):  # said, then tried again a minute later
        StatisticsCache(shared=jobs, in_request_flops=0).class_means(loaded, layer)


def test_the_api_answers_202_with_progress_then_200(app_state, monkeypatch):
    from app.main import server
    from tests.app_context import served_context

    client = server.test_client()
    monkeypatch.setattr(served_context().statistics, "in_request_flops", 0)
    url = "/api/models/mnist-cnn/class-mean?layer=Dense_2&label=4"
    first = client.get(url)
    assert first.status_code == 202, first.get_json()
    body = first.get_json()
    assert body["status"] in ("running", "queued") and "in the background" in body["message"]
    assert set(body) >= {"done", "total", "fraction", "seconds_left", "stage"}
    answer = answer_when_done(client, url)
    assert answer.status_code == 200 and answer.get_json()["layer"] == "Dense_2"


def test_a_replaced_versions_statistics_go_after_an_hour_and_a_deleted_models_at_once(app_state):
    """Stored statistics follow the model: a new version's first statistic removes the replaced version's (once
    they are an hour old), and deleting the model removes them all."""
    from app.main import server
    from tests.app_context import served_context

    client = server.test_client()
    jobs = served_context().statistics_jobs
    assert client.get("/api/models/tiny/class-mean?layer=hidden&label=1").status_code == 200
    stored = jobs.folder / "tiny"
    (first,) = stored.iterdir()
    for name, content in (("replaced", "x.npz"), ("running", "x.lock")):
        (stored / name).mkdir()
        (stored / name / content).write_text("{}")
    hour_ago = time.time() - 3601
    for name in ("replaced", "running"):
        os.utime(stored / name, (hour_ago, hour_ago))
    (stored / "recent").mkdir()
    model_file = app_state.parent / "store" / "tiny" / "model.keras"
    os.utime(model_file, (time.time() + 5, time.time() + 5))  # a new version of the model
    assert client.get("/api/models/tiny/class-mean?layer=hidden&label=1").status_code == 200
    current = served_context().store.get("tiny").version
    assert current != first.name
    assert sorted(path.name for path in stored.iterdir()) == sorted([first.name, "recent", "running", current])
    assert client.delete("/api/models/tiny").status_code == 204
    assert [path.name for path in stored.iterdir()] == ["running"]  # its job, still running, cleans up after
