"""Waiting for and killing the background jobs of whole-test-set statistics (see :mod:`app.jobs.background`), as the
job tests of the tiny CNN and of the small MobileNetV2 do it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from app.core.errors import StillComputing
from app.jobs.background import read_json

JOB_SECONDS = 120  # a fresh interpreter importing TensorFlow on a busy 2-core machine, then a small pass


def wait_for(compute, timeout: float = JOB_SECONDS):
    """The value ``compute`` returns once the job it asks for is done (it raises StillComputing until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return compute()
        except StillComputing:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def answer_when_done(client, url: str, timeout: float = JOB_SECONDS):
    """The API's answer to ``url`` once no background job is left to wait for (it answers 202 until then)."""
    deadline = time.monotonic() + timeout
    while (answer := client.get(url)).status_code == 202:
        assert time.monotonic() < deadline, f"{url} still computing after {timeout} s: {answer.get_json()}"
        time.sleep(0.5)
    return answer


def kill_halfway(progress: Path, lock: Path, timeout: float = JOB_SECONDS) -> dict:
    """Kill the job of ``lock`` (SIGKILL: no clean-up of its own) once its ``progress`` file reports a first batch,
    and wait until the web side has reaped it and freed the lock. Returns the progress record it left."""
    deadline = time.monotonic() + timeout
    while (read_json(progress) or {}).get("done", 0) == 0:
        assert time.monotonic() < deadline, "the job never reported a batch"
        time.sleep(0.02)  # a pass of a few batches lasts about a second: look often enough to land inside it
    os.kill(read_json(lock)["pid"], signal.SIGKILL)
    while lock.exists():  # the launcher reaps the process and frees the lock
        assert time.monotonic() < deadline, "the lock of a killed job was never freed"
        time.sleep(0.1)
    return read_json(progress) or {}


def stop_jobs_of(folder: Path) -> None:
    """Kill every job still holding a lock under ``folder`` (a test that failed before its job ended): no pass over a
    test set outlives the test that started it."""
    for lock in folder.rglob("*.lock"):
        pid = (read_json(lock) or {}).get("pid")
        if isinstance(pid, int) and pid > 0:
            with contextlib.suppress(ProcessLookupError):  # ended meanwhile
                os.kill(pid, signal.SIGKILL)
