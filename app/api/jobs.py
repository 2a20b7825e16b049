"""Training jobs over JSON: start, list, inspect (metrics so far, progress), stop, and read probe records.

``POST /api/jobs`` takes a training configuration (see :class:`app.core.training.TrainingConfig`) and answers
202 with the job id; the job runs in the background (see :mod:`app.jobs`). Handlers only parse and call.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify

from app.api.blueprint import api, int_arg, json_body
from app.auth.gate import current_user_name
from app.context import app_context
from app.core.errors import InvalidInput, NotFound
from app.core.training import ConfigError
from app.jobs.records import Job
from app.jobs.store import JobStore


def job_detail(store: JobStore, job: Job) -> dict[str, Any]:
    """A job with its per-epoch metrics and the epochs that have a probe record."""
    return {**job.to_dict(), "epochs": store.epochs(job.id), "probe_epochs": store.probe_epochs(job.id)}


@api.post("/api/jobs")
def start_job():
    """Start a training job from the JSON configuration: 202 + id; 400 with ``errors``; 409 if one is running."""
    try:
        body = json_body()
    except InvalidInput as exc:
        raise ConfigError([f"the request body must be a JSON object with the training configuration ({exc})"]) from exc
    job = app_context().job_runner.start(body, started_by=current_user_name())
    return jsonify(id=job.id, status=job.status, model=job.model, url=f"/api/jobs/{job.id}"), 202


@api.get("/api/jobs")
def list_jobs():
    """The newest jobs (``?limit=``, default 20), newest first, without their epoch records."""
    jobs = app_context().job_runner.store.list(int_arg("limit", 20, 1, 500))
    return jsonify(jobs=[job.to_dict() for job in jobs])


@api.get("/api/jobs/<job_id>")
def get_job(job_id: str):
    """Status, progress (batches done, ETA), epochs so far with their metrics, model name and error."""
    store = app_context().job_runner.store
    return jsonify(job_detail(store, store.get(job_id)))


@api.post("/api/jobs/<job_id>/stop")
def stop_job(job_id: str):
    """Stop at the next batch; ``{"save_partial": true}`` keeps the partial model. 409 if it already ended."""
    save_partial = json_body(required=False).get("save_partial", False)
    if not isinstance(save_partial, bool):
        raise InvalidInput(f"save_partial must be true or false, got {str(save_partial)[:40]!r}")
    job = app_context().job_runner.stop(job_id, save_partial=save_partial)
    return jsonify(job.to_dict())


@api.post("/api/jobs/<job_id>/probe")
def change_probe(job_id: str):
    """During a run, record another test image and/or layer from the next epoch on: ``{"image": 7, "layer":
    "Conv2D_2"}`` (each defaults to the current choice). 400 for an unknown layer or an image out of range."""
    body = json_body(required=False)
    job = app_context().job_runner.change_probe(job_id, body.get("image"), body.get("layer"))
    return jsonify(job.to_dict())


@api.get("/api/jobs/<job_id>/probe")
def get_probe(job_id: str):
    """The probe image's layer output and probabilities after ``?epoch=`` (default: the last recorded)."""
    store = app_context().job_runner.store
    store.get(job_id)
    recorded = store.probe_epochs(job_id)
    if not recorded:
        raise NotFound(f"job {job_id} has no probe records")
    epoch = int_arg("epoch", recorded[-1], 1, max(recorded))
    probe = store.probe(job_id, epoch)
    if probe is None:
        raise NotFound(f"no probe record for epoch {epoch}; recorded: {recorded}")
    return jsonify(
        job=job_id,
        epoch=epoch,
        layer=probe["layer"],
        image=probe["image"],
        shape=list(probe["activations"].shape),
        values=probe["activations"].tolist(),
        probabilities=probe["probabilities"].tolist(),
    )
