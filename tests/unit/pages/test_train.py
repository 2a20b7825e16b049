"""The training page's callbacks called directly, on a fresh job store: banners know their job, the progress says
what a run is doing, the form reports every problem at once and can be refilled from a finished job."""

from __future__ import annotations

import pytest
from dash import no_update

from app.core.training import parse_config
from tests.app_context import refresh_context, served_context


@pytest.fixture(scope="module")
def train():
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import train

    return train


@pytest.fixture
def jobs(app_state):
    """A fresh job store (SQLite under a temporary STATE_DIR) behind the app."""
    yield served_context().job_store
    refresh_context()


def form_args(train, **changes) -> list:
    values = {**train.default_form(), **changes}
    return [values[key] for key in train.FIELD]


def queued_job(jobs, **config):
    return jobs.create(parse_config({"name": "queued-run", **config}).to_dict())


def test_a_refused_start_names_the_running_job_as_the_banners_job(train, jobs):
    running = queued_job(jobs)
    message, pinned, banner_job, *_ = train.on_start(1, *form_args(train, name="second-run"))
    assert "already running" in str(message.children) and running.id in str(message.children)
    assert pinned is no_update and banner_job == running.id


def test_stop_and_probe_banners_talk_about_the_shown_job(train, jobs):
    job = queued_job(jobs, probe_image=0)
    view = {"job": job.id, "epochs": 0, "status": "queued", "total": 0}
    message, banner_job = train.on_probe_now(1, 3, "Conv2D_1", view)
    assert "records test image 3" in str(message.children) and banner_job == job.id
    message, banner_job = train.on_stop(1, view, False)
    assert f"Stopping job {job.id}" in str(message.children) and banner_job == job.id
    jobs.finish(job.id, "stopped")
    message, banner_job = train.on_stop(1, view, False)  # an ended job: the refusal is about no running job
    assert "already stopped" in str(message.children) and banner_job is None
    message, banner_job = train.on_stop(1, None, False)
    assert "No job to stop" in str(message.children) and banner_job is None


def test_a_stopped_runs_curves_show_the_cut_epoch_as_partial(train, jobs):
    job = queued_job(jobs, epochs=5)
    for epoch, batches in ((1, 8), (2, 8), (3, 2)):
        jobs.add_epoch(job.id, {"epoch": epoch, "loss": 1 / epoch, "val_loss": 1, "accuracy": 0.5, "val_accuracy": 0.5,
                                "learning_rate": 0.001, "batches": batches, "batches_per_epoch": 8,
                                "partial": batches < 8})
    jobs.finish(job.id, "stopped")
    curves, rate, *_ = train.on_new_epochs({"job": job.id, "epochs": 3, "status": "stopped", "total": 5}, None, None)
    assert curves["layout"]["title"]["text"] == f"{job.id}: 2 of 5 epochs + 25 % of epoch 3 (stopped)"
    assert curves["data"][0]["x"] == [1, 2] and curves["data"][4]["x"] == [2.0, 2.25]
    assert rate["data"][1]["marker"]["symbol"][-1] == "circle-open"


def progress_of(train, job_id):
    _status, value, label, animated, color, text, *_ = train.on_tick(1, job_id, None)
    return value, label, animated, color, text


def test_progress_says_what_the_job_does_before_its_first_batch(train, jobs):
    job = queued_job(jobs, epochs=5)
    assert progress_of(train, job.id) == (100, "waiting for a worker", True, "secondary", "waiting for a worker…")
    assert jobs.claim(job.id, 12345)
    assert progress_of(train, job.id) == (100, "loading data", True, "secondary", "loading data…")
    jobs.update(job.id, info={"class_names": list("0123456789"), "train_size": 80, "test_size": 10})
    assert progress_of(train, job.id)[1:] == ("building the model", True, "secondary", "building the model…")
    jobs.update(job.id, epochs_total=5, batches_per_epoch=8, epoch=0, batch=0)
    assert progress_of(train, job.id)[4] == "preparing the first batch…"
    jobs.update(job.id, epoch=2, batch=4)  # 12 of 40 batches
    value, label, animated, color, text = progress_of(train, job.id)
    assert (value, label, animated, color) == (30.0, "30 %", True, "primary")
    assert text.startswith("epoch 2/5 · batch 4/8 · 12/40 batches · 0 epochs recorded")
    jobs.add_epoch(job.id, {"epoch": 1, "loss": 0.5, "val_loss": 0.5, "accuracy": 0.8, "val_accuracy": 0.8,
                            "learning_rate": 0.001})
    assert " · 1 epoch recorded" in progress_of(train, job.id)[4]
    assert " · 5 epochs · " in train.on_tick(1, job.id, None)[0][2].children  # the status line
    jobs.finish(job.id, "failed", error="boom")
    assert progress_of(train, job.id)[1:4] == ("30 %", False, "primary")
    failed_early = queued_job(jobs)
    jobs.finish(failed_early.id, "failed", error="no data")
    assert progress_of(train, failed_early.id) == (0.0, "", False, "primary", "")
    assert " · 1 epoch · " in train.on_tick(1, queued_job(jobs, epochs=1).id, None)[0][2].children


def start_outputs(train, **changes):
    message, pinned, banner_job, *invalid = train.on_start(1, *form_args(train, **changes))
    return message, pinned, banner_job, {key for key, flag in zip(train.MARKABLE, invalid, strict=True) if flag}


def test_start_lists_every_problem_at_once_and_marks_each_field(train, jobs):
    message, pinned, banner_job, marked = start_outputs(train, epochs=0, filters="32, x", momentum=["x"],
                                                        name="../evil", conv_activation="swish")
    text = str(message.children)
    assert pinned is no_update and banner_job is None
    assert marked == {"epochs", "filters", "momentum", "name", "conv_activation"}
    for part in ("epochs must be between 1 and 500", "Conv filters", "momentum must be a number",
                 "invalid model name", "conv layer 1 activation"):
        assert part in text
    assert jobs.list() == []


def test_a_run_that_cannot_be_built_is_refused_before_a_job_exists(train, jobs):
    message, pinned, _banner, marked = start_outputs(train, filters="8, 8, 8, 8, 8, 8", kernels="1", pool_size=2)
    assert "pooling after conv layer 5 leaves no pixels" in str(message.children) and marked == {"pool_size"}
    assert pinned is no_update and jobs.list() == []


def test_the_settings_shown_are_the_jobs_read_only_and_run_again_fills_the_form_with_them(train, jobs, app_store):
    job = queued_job(jobs, name="mnist-cnn", epochs=3, conv_layers=[{"filters": 8, "kernel": 5}, {"filters": 16}],
                     pool_size=0, dense_layers=[], optimizer="adam", max_train=500, probe_image=None)
    view = {"job": job.id, "epochs": 0, "status": "queued", "total": 0}
    settings, rerun_hidden = train.on_view_settings(view)
    text = str(settings)
    assert f"Settings of job {job.id}" in text and "read-only" in text
    assert "'8, 16'" in text and "'5, 3'" in text and "'adam'" in text and "'500'" in text
    assert rerun_hidden  # not while it runs
    jobs.finish(job.id, "succeeded", saved=True)
    assert train.on_view_settings({**view, "status": "succeeded"})[1] is False
    *outputs, note = train.on_rerun(1, {**view, "status": "succeeded"})
    values = dict(zip(train.FIELD, outputs[: len(train.FIELD)], strict=False))
    assert values["filters"] == "8, 16" and values["kernels"] == "5, 3" and values["epochs"] == 3
    assert values["optimizer"] == "adam" and values["max_train"] == 500 and values["probe_image"] is None
    assert values["name"] == "mnist-cnn-2"  # the name it was saved under is taken
    assert outputs[len(train.FIELD):] == [False] * len(train.MARKABLE)  # earlier invalid marks go
    assert job.id in note and "'mnist-cnn-2'" in note
    # the filled form describes the job's run exactly, under the new name
    check = train.check_form(values)
    assert check.errors == [] and parse_config(check.raw).to_dict() == {**job.config, "name": "mnist-cnn-2"}


def test_settings_and_run_again_without_a_job(train, jobs):
    settings, hidden = train.on_view_settings(None)
    assert "appear here" in str(settings) and hidden
    *outputs, note = train.on_rerun(1, None)
    assert note == "No job shown." and all(output is no_update for output in outputs)
    *outputs, note = train.on_rerun(1, {"job": "0123456789ab", "epochs": 0, "status": "succeeded", "total": 0})
    assert "0123456789ab" in note and all(output is no_update for output in outputs)


def test_the_form_and_watch_button_take_a_drawn_images_id_and_name_a_bad_one(train, jobs):
    import numpy as np

    own = "u:0123456789abcdef0123"  # not stored on this instance
    message, pinned, banner_job, *marks = train.on_start(1, *form_args(train, name="own-run", probe_image=own))
    assert "no drawn or uploaded image" in str(message.children) and banner_job is None
    assert dict(zip(train.MARKABLE, marks, strict=True))["probe_image"] is True
    message, *_ = train.on_start(1, *form_args(train, name="own-run", probe_image="u:xyz"))
    assert "'u:xyz' is not an image id" in str(message.children)
    job = queued_job(jobs, probe_image=0)
    view = {"job": job.id, "epochs": 1, "status": "running", "total": 2}
    message, _ = train.on_probe_now(1, own, "Conv2D_1", view)
    assert "no drawn or uploaded image" in str(message.children)
    message, _ = train.on_probe_now(1, " 4 ", "Conv2D_1", view)  # the field is text now
    assert "records test image 4" in str(message.children)
    # a record of a drawn image is shown as "your image", without a true class
    pixels = np.zeros((28, 28, 1), np.float32)
    jobs.update(job.id, info={"class_names": list("0123456789"),
                              "probe_images": {own: {"image": own, "label": None, "pixels": pixels.tolist()}}})
    jobs.add_probe(job.id, 1, "Conv2D_1", own, np.ones((26, 26, 2)), np.full(10, 0.1))
    heatmap, image, _bars, text = train.on_probe_epoch(1, view)
    assert heatmap["layout"]["title"]["text"].startswith(f"Conv2D_1 of your image {own} after epoch 1")
    assert image["layout"]["title"]["text"] == f"your image {own}"


def test_a_saved_model_is_offered_in_the_explorer_only_while_it_is_in_the_store(train, jobs):
    job = queued_job(jobs, name="mnist-cnn")
    jobs.finish(job.id, "succeeded", saved=True)  # as if this run had saved the bundled model of the store
    *_, result, _stop, _probe, table, view = train.on_tick(1, job.id, None)
    assert "Open mnist-cnn in the explorer" in str(result) and "train-explore-link" in str(result)
    assert "Link(children='mnist-cnn', href='/?model=mnist-cnn" in str(table) and view["stored"] is True

    served_context().store.delete("mnist-cnn")
    *_, result, _stop, _probe, table, new_view = train.on_tick(2, job.id, view)
    assert new_view != view  # the card is redrawn at the next poll, not left with its link
    text = str(result)
    assert "'mnist-cnn' was saved, then deleted from the store" in text
    assert "explorer" not in text and "train-explore-link" not in text
    assert "Link(children='mnist-cnn'" not in str(table) and "(deleted)" in str(table)
