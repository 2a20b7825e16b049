"""A training run's model name is refused at submission when it is not a plain model name, on both job engines
(SQLite embedded and Redis/Celery with a real redis-server): the answer is 400 with the reason and no job is
recorded, rather than a 202 for a run that could only fail."""

from __future__ import annotations

import contextlib

import pytest

from tests.app_context import refresh_context, served_context
from tests.services_support import redis_server

QUICK = {"dataset": "mnist-subset", "conv_layers": [{"filters": 2}], "dense_layers": [], "max_train": 128,
         "max_test": 16, "epochs": 1, "batch_size": 64}


@pytest.fixture(params=["embedded", "celery"])
def client(request, app_store, tmp_path, monkeypatch):
    """The API on one job engine; the Celery engine gets a real redis-server (no worker: nothing may start)."""
    with contextlib.ExitStack() as stack:
        if request.param == "celery":
            monkeypatch.setenv("REDIS_URL", stack.enter_context(redis_server()))
        else:
            monkeypatch.delenv("REDIS_URL", raising=False)
        monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
        refresh_context()
        from app.main import server

        try:
            assert served_context().job_runner.engine == request.param
            yield server.test_client()
        finally:
            refresh_context()


# "$" matches before a final newline, so the first two passed a pattern ending in "$" with re.match.
@pytest.mark.parametrize("name", ["nl\n", "mnist-run\n", "a\r\n", "\nlead", "tab\t", "a/b", "..", ""])
def test_a_name_that_is_not_a_plain_model_name_is_refused_at_submission(client, name):
    answer = client.post("/api/jobs", json={**QUICK, "name": name})
    assert answer.status_code == 400, answer.get_json()
    assert any("invalid model name" in error for error in answer.get_json()["errors"]), answer.get_json()
    assert client.get("/api/jobs").get_json()["jobs"] == []
