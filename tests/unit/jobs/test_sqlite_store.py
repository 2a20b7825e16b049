"""app.jobs.sqlite_store.SqliteJobStore specifics: the file it creates (WAL), how fields are encoded in SQLite
columns and decoded back, that other instances and processes see the same data, and its epoch and probe tables.
The store rules shared with Redis are in test_store.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.config import PROJECT_ROOT
from app.jobs.records import encode_probe
from app.jobs.sqlite_store import SqliteJobStore

CONFIG = {"name": "m1", "epochs": 2, "layers": [{"filters": 8}], "rate": 0.5}


def raw_row(path, job_id: str) -> dict:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return dict(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())


def test_opening_creates_the_folder_and_a_wal_database_named_by_its_url(tmp_path):
    path = tmp_path / "state" / "deeper" / "jobs.sqlite3"
    store = SqliteJobStore(path)
    assert path.is_file() and store.path == path.resolve() and store.url == f"sqlite:{path.resolve()}"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"jobs", "epochs", "probes"} <= tables


def test_json_and_bool_fields_are_stored_encoded_and_read_back_equal(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    job = store.create(CONFIG, started_by="bob")
    store.update(job.id, info={"classes": ["a", "b"], "n": 3}, stop_requested=True, probe_request={"image": 4,
                                                                                                    "layer": "c"})
    row = raw_row(store.path, job.id)
    assert json.loads(row["config"]) == CONFIG and json.loads(row["info"]) == {"classes": ["a", "b"], "n": 3}
    assert row["stop_requested"] == 1 and row["saved"] == 0 and row["started_by"] == "bob"
    read = store.get(job.id)
    assert read.config == CONFIG and read.info == {"classes": ["a", "b"], "n": 3}
    assert read.probe_request == {"image": 4, "layer": "c"}
    assert read.stop_requested is True and read.saved is False


@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
))
def test_any_json_value_in_info_reads_back_equal(tmp_path_factory, value):
    store = SqliteJobStore(tmp_path_factory.getbasetemp() / "hypothesis-jobs.sqlite3")
    job = store.current() or store.create(CONFIG)
    store.update(job.id, info={"value": value})
    assert store.get(job.id).info == {"value": value}


def test_a_null_column_reads_as_the_fields_default(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    job = store.create(CONFIG)
    with sqlite3.connect(store.path) as db:
        db.execute("UPDATE jobs SET engine = NULL, info = NULL, saved = NULL, epoch = NULL WHERE id = ?", (job.id,))
    read = store.get(job.id)
    assert (read.engine, read.info, read.saved, read.epoch, read.started) == ("embedded", {}, False, 0, None)


def test_a_second_instance_and_another_process_see_the_same_jobs(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    job = SqliteJobStore(path).create(CONFIG)
    again = SqliteJobStore(path)  # opening an existing store keeps its data
    assert again.get(job.id).config == CONFIG
    code = (
        "import sys; from app.jobs.sqlite_store import SqliteJobStore; s = SqliteJobStore(sys.argv[1]); "
        "s.finish(sys.argv[2], 'succeeded', saved=True); s.add_epoch(sys.argv[2], {'epoch': 1, 'loss': 0.25})"
    )
    subprocess.run([sys.executable, "-c", code, str(path), job.id], cwd=PROJECT_ROOT, check=True, timeout=60)
    done = again.get(job.id)
    assert done.status == "succeeded" and done.saved is True and again.epochs(job.id) == [{"epoch": 1, "loss": 0.25}]


def test_list_is_newest_first_and_bounded_by_its_limit(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    ids = []
    for n in range(5):
        job = store.create({**CONFIG, "name": f"m{n}"})
        store.finish(job.id, "succeeded")
        ids.append(job.id)
    assert [job.id for job in store.list(3)] == ids[::-1][:3]
    assert [job.id for job in store.list(10)] == ids[::-1]


def test_an_epoch_recorded_twice_keeps_the_latest_metrics(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    job = store.create(CONFIG)
    store.add_epoch(job.id, {"epoch": 1, "loss": 0.9})
    store.add_epoch(job.id, {"epoch": 1.0, "loss": 0.4})
    assert store.epochs(job.id) == [{"epoch": 1.0, "loss": 0.4}]


def test_probes_are_stored_as_the_exact_encoded_bytes_and_replaced_per_epoch(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    job = store.create(CONFIG)
    store.add_probe(job.id, 2, "conv", 5, np.ones((2, 2, 3)), np.array([0.1, 0.9]))
    store.add_probe(job.id, 2, "conv", 6, np.full((2, 2, 3), 3.0), np.array([0.6, 0.4]))
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT epoch, data FROM probes WHERE job_id = ?", (job.id,)).fetchall()
    assert len(rows) == 1 and rows[0][0] == 2
    assert bytes(rows[0][1]) == encode_probe("conv", 6, np.full((2, 2, 3), 3.0), np.array([0.6, 0.4]))
    probe = store.probe(job.id, 2)
    assert probe["image"] == 6
    np.testing.assert_array_equal(probe["activations"], np.full((2, 2, 3), 3.0))


def test_update_of_an_unknown_job_changes_nothing(tmp_path):
    store = SqliteJobStore(tmp_path / "jobs.sqlite3")
    job = store.create(CONFIG)
    store.update("missing", status="failed")
    assert store.get(job.id).status == "queued" and [j.id for j in store.list()] == [job.id]


def test_a_deleted_database_folder_is_reported_as_unavailable(tmp_path):
    import shutil

    from app.jobs.records import JobStoreUnavailable

    store = SqliteJobStore(tmp_path / "state" / "jobs.sqlite3")
    shutil.rmtree(tmp_path / "state")
    with pytest.raises(JobStoreUnavailable, match="cannot be opened"):
        store.list()
