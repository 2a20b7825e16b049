"""Bounded load test: concurrent clients on a mix of routes against gunicorn, without and with a training job.

The server is started exactly as ``make serve`` starts it (``gunicorn --workers 2 --threads 4 --bind HOST:PORT
--no-control-socket --config app/gunicorn_conf.py app.main:server``) on a free port of 127.0.0.1, with a temporary
``MODEL_STORE`` (a copy of ``model_store/``) and a temporary ``STATE_DIR``. Once ``/healthz`` answers and the workers
have gone idle (their warm-up done), two phases of the same load run:

1. no training job;
2. a real training job started through ``POST /api/jobs`` (the blog config on ``mnist-subset``, more epochs than
   the phase lasts), load started once its first batch is done, then ``POST /api/jobs/<id>/stop`` and a wait for
   the job to end.

Each client is a thread with one keep-alive ``http.client`` connection that sends requests back to back, picking
a route by weight (:data:`MIX`): the explorer's real Dash callback (``POST /_dash-update-component``, the body
built from ``GET /_dash-dependencies`` as the browser builds it, random image and layer), the predict, activations
and top-images APIs, the model and job lists, and ``/healthz``. Every route must answer 200 (the callback with the
heatmap in its answer); anything else is an error, and 5xx are counted on their own. A client stops at the end of
the phase or after :data:`MAX_REQUESTS_PER_CLIENT`, whichever comes first; each request times out after
:data:`REQUEST_TIMEOUT_S`.

Reported per phase: requests, throughput, p50/p95/p99/max latency per route and overall, requests over 1 s (and
when in the phase they were sent), errors and 5xx (with the request that caused the first few), the slowest
requests, the RSS of each gunicorn worker (psutil: the master's children) before, at its peak during and after
the phase, the CPU seconds of the workers, of the clients (this process: they share the machine) and of the
training process, and the training process's RSS and progress during phase 2. gunicorn (its whole process group)
and the training job are stopped at the end, also on Ctrl-C or an error. Exit code 1 if any request got a 5xx,
2 if the server or the job could not be started, 130 on Ctrl-C.

Phase 1 starts on freshly booted workers: the first top-images request per worker computes that layer's
statistics, and the activation cache fills as random images come in; phase 2 runs on warmer workers.

Usage: ``python bench/load_test.py [--seconds 30] [--clients 16] [--workers 2] [--threads 4] [--seed 0]
[--json PATH]``; quick check: ``--seconds 5 --clients 4``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.util
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # the only address this script ever sends a request to
MODEL = "mnist-cnn"
TOP_IMAGES_LAYER = "Conv2D_3"
COLORMAPS = ("viridis", "jet", "greys", "inferno")
# Route -> weight: what one person on the explorer causes. Every view change is one render callback; the JSON API
# is what notebooks and scripts call; the job list and /healthz are the polling of the training page and of a
# load balancer.
MIX = {
    "callback": 40,
    "predict": 14,
    "activations": 12,
    "top-images": 10,
    "models": 8,
    "jobs": 8,
    "healthz": 8,
}
REQUEST_TIMEOUT_S = 30
MAX_REQUESTS_PER_CLIENT = 100_000
HEALTH_TIMEOUT_S = 180
IDLE_TIMEOUT_S = 120
JOB_START_TIMEOUT_S = 180
JOB_STOP_TIMEOUT_S = 90
SAMPLE_EVERY_S = 0.5
ERRORS_SHOWN = 5
SLOWEST_SHOWN = 3
LOG_TAIL_LINES = 40
MB = 1024 * 1024


class LoadTestFailure(Exception):
    """The server or the training job could not be brought to the state a phase needs."""


class Terminated(Exception):
    """SIGTERM arrived: unwind so the job and the server are stopped."""


def log(message: str) -> None:
    print(f"load: {message}", flush=True)


def _smoke_run_module():
    """``scripts/smoke_run.py`` (not a package): the Dash callback body it builds as a browser does, a free port,
    and stopping a server's process group."""
    spec = importlib.util.spec_from_file_location("smoke_run", ROOT / "scripts" / "smoke_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


smoke_run = _smoke_run_module()


def explorer_render(dependencies: list[dict], layer: str, image: int, cmap: str = "viridis", scale: bool = False,
                    changed: str = "explore-image-asked.data") -> dict:
    """The body dash-renderer posts for the explorer's render callback of (``layer``, ``image``) of :data:`MODEL`,
    after a change of ``changed``.

    Every other input has the value ``scripts/smoke_run.py`` gives it (``EXPLORER_RENDER_INPUTS``, which the smoke
    run and the tests check against the app), and the body is built from the served app's own
    ``/_dash-dependencies``: an input the explorer gains reaches the benchmarks without editing them.
    """
    body = smoke_run.callback_request(dependencies, "explore-heatmap.figure", {
        **smoke_run.EXPLORER_RENDER_INPUTS, "explore-model.value": MODEL, "explore-layer.value": layer,
        "explore-image.value": image, "explore-cmap.value": cmap, "explore-scale.value": scale,
    })
    body["changedPropIds"] = [changed]
    return body


# ---------------------------------------------------------------------------------------------------------- HTTP


def request(port: int, method: str, path: str, body: Any = None,
            timeout: float = REQUEST_TIMEOUT_S) -> tuple[int, bytes]:
    """One request on a fresh connection to 127.0.0.1:``port``; (status, body). Raises OSError if nothing answers."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        connection.request(method, path, body=data, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    except http.client.HTTPException as exc:
        raise OSError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
    finally:
        connection.close()


def get_json(port: int, path: str) -> Any:
    """``GET path`` must answer 200 with JSON."""
    status, content = request(port, "GET", path)
    if status != 200:
        raise LoadTestFailure(f"GET {path} answered {status}: {content[:300]!r}")
    return json.loads(content)


@dataclass
class Sample:
    """One request as a client saw it: route, status (None if the connection failed), latency, when it was sent
    (seconds into the phase), error."""

    route: str
    request: str
    status: int | None
    ms: float
    at_s: float
    error: str | None = None


@dataclass
class Plan:
    """What the clients ask for, learnt from the running server before the load starts."""

    layers: list[str]
    n_images: int
    top_units: int
    dependencies: list[dict]

    def pick(self, rng: random.Random) -> tuple[str, str, str, bytes | None, str]:
        """A weighted random (route, method, path, body, the request described in a line)."""
        route = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        image = rng.randrange(self.n_images)
        layer = rng.choice(self.layers)
        if route == "callback":
            cmap, scale = rng.choice(COLORMAPS), rng.random() < 0.2
            body = explorer_render(self.dependencies, layer, image, cmap, scale)  # as after an image change
            path = "/_dash-update-component"
            return (route, "POST", path, json.dumps(body).encode(),
                    f"POST {path} (explorer: layer={layer} image={image} cmap={cmap} scale={scale})")
        paths = {
            "predict": f"/api/models/{MODEL}/predict?image={image}",
            "activations": f"/api/models/{MODEL}/activations?layer={layer}&image={image}",
            "top-images": f"/api/models/{MODEL}/top-images?layer={TOP_IMAGES_LAYER}&unit="
                          f"{rng.randrange(self.top_units)}&k=9",
            "models": "/api/models",
            "jobs": "/api/jobs",
            "healthz": "/healthz",
        }
        return route, "GET", paths[route], None, f"GET {paths[route]}"


def check_answer(route: str, status: int, payload: bytes) -> str | None:
    """None if the answer is what a user expects, else what is wrong."""
    if status != 200:
        return f"HTTP {status}"
    if route == "callback" and b'"explore-heatmap"' not in payload:
        return "callback answered without the heatmap: " + payload[:200].decode(errors="replace")
    return None


def client(port: int, plan: Plan, seed: int, phase_start: float, deadline: float, stop: threading.Event,
           out: list[Sample]) -> None:
    """Send requests back to back on one keep-alive connection until ``deadline`` (bounded in count too); times
    are ``time.monotonic()``."""
    rng = random.Random(seed)
    connection: http.client.HTTPConnection | None = None
    for _ in range(MAX_REQUESTS_PER_CLIENT):
        if stop.is_set() or time.monotonic() >= deadline:
            break
        route, method, path, body, description = plan.pick(rng)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        at_s = time.monotonic() - phase_start
        started = time.perf_counter()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_S)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            status, error = response.status, check_answer(route, response.status, payload)
            if response.will_close:
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as exc:
            status, error = None, f"connection: {type(exc).__name__}: {exc}"
            if connection is not None:
                connection.close()
            connection = None
        out.append(Sample(route, description, status, (time.perf_counter() - started) * 1000, at_s, error))
    if connection is not None:
        connection.close()


# ------------------------------------------------------------------------------------------------ server and job


def gunicorn_command(port: int, workers: int, threads: int) -> list[str]:
    """``make serve``'s command line, with the gunicorn of this interpreter's virtualenv."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        raise LoadTestFailure(f"no gunicorn next to {sys.executable}; run with the project's .venv/bin/python")
    return [str(gunicorn), "--workers", str(workers), "--threads", str(threads), "--bind", f"{HOST}:{port}",
            "--no-control-socket", "--config", "app/gunicorn_conf.py", "app.main:server"]


def wait_until_healthy(port: int, server: subprocess.Popen) -> float:
    """Poll ``/healthz`` until it answers 200 (bounded); the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < HEALTH_TIMEOUT_S:
        if server.poll() is not None:
            raise LoadTestFailure(f"gunicorn exited with code {server.returncode} before answering")
        try:
            if request(port, "GET", "/healthz", timeout=5)[0] == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.5)
    raise LoadTestFailure(f"/healthz did not answer 200 within {HEALTH_TIMEOUT_S} s")


def workers_of(master: psutil.Process) -> list[psutil.Process]:
    """gunicorn's workers: the master's direct children (a training process is a worker's child, not the master's)."""
    return sorted(master.children(recursive=False), key=lambda p: p.pid)


def wait_until_idle(master: psutil.Process, expected: int) -> float:
    """Wait until ``expected`` workers exist and none used more than 5 % of a core over a second: each worker
    traces its probe model after the fork (gunicorn_conf.post_worker_init), and /healthz may be answered by the
    first one ready. Bounded; the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < IDLE_TIMEOUT_S:
        workers = workers_of(master)
        if len(workers) == expected:
            try:
                before = [sum(w.cpu_times()[:2]) for w in workers]
                time.sleep(1)
                after = [sum(w.cpu_times()[:2]) for w in workers]
            except psutil.NoSuchProcess:
                continue
            if all(b - a < 0.05 for a, b in zip(before, after, strict=True)):
                return time.monotonic() - started
        else:
            time.sleep(0.5)
    raise LoadTestFailure(f"the {expected} workers did not go idle within {IDLE_TIMEOUT_S} s")


def cpu_seconds(process: psutil.Process) -> float | None:
    """User + system CPU seconds of ``process`` so far (None once it is gone)."""
    try:
        return sum(process.cpu_times()[:2])
    except psutil.Error:
        return None


def rss_mb(process: psutil.Process) -> float | None:
    try:
        return process.memory_info().rss / MB
    except psutil.Error:
        return None


class MemorySampler(threading.Thread):
    """Samples the workers' and the training process's RSS every :data:`SAMPLE_EVERY_S` during a phase."""

    def __init__(self, workers: list[psutil.Process], trainer: psutil.Process | None) -> None:
        super().__init__(daemon=True)
        self.workers = workers
        self.trainer = trainer
        self.peaks: dict[int, float] = {}
        self.trainer_samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_EVERY_S):
            for worker in self.workers:
                value = rss_mb(worker)
                if value is not None:
                    self.peaks[worker.pid] = max(self.peaks.get(worker.pid, 0.0), value)
            if self.trainer is not None and (value := rss_mb(self.trainer)) is not None:
                self.trainer_samples.append(value)


def training_config(seconds: float) -> dict[str, Any]:
    """The blog config (the defaults of app.core.training.TrainingConfig) on the bundled subset, with more epochs
    than the phase can finish (an epoch of 4,000 images takes ~4 s here; it is stopped at the end)."""
    return {"name": f"loadtest-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}", "dataset": "mnist-subset",
            "epochs": min(500, max(10, math.ceil(seconds) + 10))}


def job_state(port: int, job_id: str) -> dict[str, Any]:
    return get_json(port, f"/api/jobs/{job_id}")


def start_job(port: int, seconds: float) -> str:
    """Start a training job through ``POST /api/jobs``; its id."""
    config = training_config(seconds)
    status, content = request(port, "POST", "/api/jobs", config)
    if status != 202:
        raise LoadTestFailure(f"POST /api/jobs answered {status}: {content[:300]!r}")
    job_id = json.loads(content)["id"]
    log(f"training job {job_id} started: model {config['name']}, {config['epochs']} epochs, blog config, "
        "mnist-subset")
    return job_id


def wait_for_first_batch(port: int, job_id: str) -> tuple[dict[str, Any], float]:
    """Wait (bounded) until the job runs and has finished a batch; (job, seconds it took)."""
    started = time.monotonic()
    while time.monotonic() - started < JOB_START_TIMEOUT_S:
        job = job_state(port, job_id)
        if job["status"] in ("succeeded", "failed", "stopped"):
            raise LoadTestFailure(f"training job {job_id} ended before the load: {job['status']} {job.get('error')}")
        if job["status"] == "running" and job.get("batches_done", 0) > 0 and job.get("pid"):
            return job, time.monotonic() - started
        time.sleep(0.5)
    raise LoadTestFailure(f"training job {job_id} did not finish a batch within {JOB_START_TIMEOUT_S} s")


def stop_job(port: int, job_id: str) -> tuple[dict[str, Any], float]:
    """``POST /api/jobs/<id>/stop`` and wait (bounded) for the job to end; (final job, seconds it took)."""
    started = time.monotonic()
    status, content = request(port, "POST", f"/api/jobs/{job_id}/stop", {})
    if status not in (200, 409):  # 409: it had already ended
        raise LoadTestFailure(f"POST /api/jobs/{job_id}/stop answered {status}: {content[:300]!r}")
    while time.monotonic() - started < JOB_STOP_TIMEOUT_S:
        job = job_state(port, job_id)
        if job["status"] in ("succeeded", "failed", "stopped"):
            return job, time.monotonic() - started
        time.sleep(0.5)
    raise LoadTestFailure(f"training job {job_id} did not end within {JOB_STOP_TIMEOUT_S} s of the stop request")


def process_ended(pid: int, timeout: float = 30) -> bool:
    """Wait (bounded) for process ``pid`` to exit and be reaped (the gunicorn worker that started it reaps it)."""
    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        return False
    return True


def end_training_process(master: psutil.Process, pid: int | None) -> None:
    """Last resort: the training process runs in a session of its own, so stopping gunicorn's group leaves it
    running. Terminate it by its pid, only if it is still a descendant of our gunicorn master."""
    if not pid:
        return
    try:
        if pid not in {p.pid for p in master.children(recursive=True)}:
            return
        process = psutil.Process(pid)
        process.terminate()
        process.wait(timeout=10)
    except psutil.TimeoutExpired:
        psutil.Process(pid).kill()
    except psutil.Error:
        pass


# ----------------------------------------------------------------------------------------------------- reporting


def percentile(ordered: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of sorted values, interpolated linearly; NaN for none."""
    if not ordered:
        return math.nan
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_row(samples: list[Sample], seconds: float) -> dict[str, Any]:
    ordered = sorted(s.ms for s in samples)
    return {
        "requests": len(samples),
        "per_second": len(samples) / seconds if seconds else math.nan,
        "p50_ms": percentile(ordered, 50),
        "p95_ms": percentile(ordered, 95),
        "p99_ms": percentile(ordered, 99),
        "max_ms": ordered[-1] if ordered else math.nan,
        "over_1s": sum(ms > 1000 for ms in ordered),
        "errors": sum(s.error is not None for s in samples),
        "server_errors": sum(s.status is not None and s.status >= 500 for s in samples),
    }


@dataclass
class PhaseResult:
    """One phase's measurements (see the module docstring)."""

    name: str
    seconds: float
    overall: dict[str, Any]
    routes: dict[str, dict[str, Any]]
    errors_by_kind: dict[str, int]
    first_errors: list[dict[str, Any]]
    slowest: list[dict[str, Any]]
    over_1s_at: list[float]
    workers_rss_mb: dict[str, dict[str, float | None]]
    load_average: dict[str, float]
    cpu_seconds: dict[str, float | None]
    training: dict[str, Any] = field(default_factory=dict)


def run_phase(name: str, port: int, plan: Plan, master: psutil.Process, args: argparse.Namespace,
              trainer_pid: int | None = None) -> PhaseResult:
    """``args.clients`` clients for ``args.seconds``; worker RSS before, during (peak) and after."""
    workers = workers_of(master)
    before = {w.pid: rss_mb(w) for w in workers}
    trainer = psutil.Process(trainer_pid) if trainer_pid else None
    sampler = MemorySampler(workers, trainer)
    load_before = os.getloadavg()[0]
    cpu_before = {"clients": time.process_time(), "workers": sum(cpu_seconds(w) or 0 for w in workers),
                  "training": cpu_seconds(trainer) if trainer else None}
    stop = threading.Event()
    outs: list[list[Sample]] = [[] for _ in range(args.clients)]
    log(f"phase '{name}': {args.clients} clients for {args.seconds:g} s")
    started = time.monotonic()
    deadline = started + args.seconds
    threads = [
        threading.Thread(target=client, args=(port, plan, 1000 * args.seed + i, started, deadline, stop, outs[i]),
                         daemon=True)
        for i in range(args.clients)
    ]
    sampler.start()
    try:
        for thread in threads:
            thread.start()
        for thread in threads:  # each client ends by itself: deadline, request cap, request timeout
            thread.join(timeout=args.seconds + REQUEST_TIMEOUT_S + 10)
    finally:
        stop.set()
        sampler.done.set()
    elapsed = time.monotonic() - started
    sampler.join(timeout=5)
    after = {w.pid: rss_mb(w) for w in workers}
    cpu_after = {"clients": time.process_time(), "workers": sum(cpu_seconds(w) or 0 for w in workers),
                 "training": cpu_seconds(trainer) if trainer else None}
    now_workers = {w.pid for w in workers_of(master)}
    if now_workers != set(before):
        log(f"WARNING: the workers changed during the phase: {sorted(before)} -> {sorted(now_workers)}")
    samples = [s for out in outs for s in out]
    errors = [s for s in samples if s.error is not None]
    kinds: dict[str, int] = {}
    for s in errors:
        key = f"{s.route}: {s.error.split(':')[0] if s.error.startswith('connection') else s.error[:60]}"
        kinds[key] = kinds.get(key, 0) + 1
    result = PhaseResult(
        name=name,
        seconds=elapsed,
        overall=latency_row(samples, elapsed),
        routes={route: latency_row([s for s in samples if s.route == route], elapsed) for route in MIX},
        errors_by_kind=kinds,
        first_errors=[asdict(s) for s in errors[:ERRORS_SHOWN]],
        slowest=[asdict(s) for s in sorted(samples, key=lambda s: -s.ms)[:SLOWEST_SHOWN]],
        over_1s_at=sorted(s.at_s for s in samples if s.ms > 1000),
        workers_rss_mb={str(pid): {"before": before[pid], "peak": sampler.peaks.get(pid), "after": after[pid]}
                        for pid in before},
        load_average={"before": load_before, "after": os.getloadavg()[0]},
        cpu_seconds={part: None if cpu_before[part] is None or cpu_after[part] is None
                     else cpu_after[part] - cpu_before[part] for part in cpu_before},
    )
    if trainer is not None:
        values = sampler.trainer_samples
        result.training = {"pid": trainer_pid, "rss_mb_first": values[0] if values else None,
                           "rss_mb_peak": max(values) if values else None,
                           "rss_mb_last": values[-1] if values else None, "samples": len(values)}
    return result


def print_phase(result: PhaseResult) -> None:
    overall = result.overall
    print(f"\n== {result.name}: {overall['requests']} requests in {result.seconds:.1f} s = "
          f"{overall['per_second']:.1f} req/s, errors {overall['errors']}, 5xx {overall['server_errors']}, "
          f"load average {result.load_average['before']:.1f} -> {result.load_average['after']:.1f}")
    print(f"{'route':<12} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'> 1 s':>5} {'errors':>6} {'5xx':>4}")
    for route, row in [*result.routes.items(), ("overall", overall)]:
        print(f"{route:<12} {row['requests']:>8} {row['per_second']:>7.1f} {row['p50_ms']:>8.1f} "
              f"{row['p95_ms']:>8.1f} {row['p99_ms']:>8.1f} {row['max_ms']:>8.1f} {row['over_1s']:>5} "
              f"{row['errors']:>6} {row['server_errors']:>4}")
    print("worker RSS MB (before / peak / after):", "; ".join(
        f"pid {pid}: {fmt(m['before'])} / {fmt(m['peak'])} / {fmt(m['after'])}"
        for pid, m in result.workers_rss_mb.items()))
    cpu = result.cpu_seconds
    print(f"CPU seconds in {result.seconds:.0f} s on {os.cpu_count()} cores: "
          f"gunicorn workers {fmt(cpu['workers'], 1)}, clients (this script) {fmt(cpu['clients'], 1)}, "
          f"training {fmt(cpu['training'], 1)}")
    if result.training:
        t = result.training
        print(f"training process pid {t['pid']} RSS MB during the phase: first {fmt(t['rss_mb_first'])}, "
              f"peak {fmt(t['rss_mb_peak'])}, last {fmt(t['rss_mb_last'])}; {t.get('progress', '')}")
    for kind, count in result.errors_by_kind.items():
        print(f"error x{count}: {kind}")
    for sample in result.first_errors:
        print(f"  e.g. {sample['request']} at {sample['at_s']:.1f} s -> {sample['status']} after {sample['ms']:.0f} "
              f"ms: {sample['error']}")
    print("slowest:", "; ".join(f"{s['request']} at {s['at_s']:.1f} s: {s['ms']:.0f} ms" for s in result.slowest))
    if result.over_1s_at:
        print("requests over 1 s were sent at (s into the phase):", ", ".join(f"{t:.1f}" for t in result.over_1s_at))


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def server_log_problems(path: Path) -> list[str]:
    """Lines of the server log that say something went wrong (errors, tracebacks, worker timeouts)."""
    if not path.exists():
        return []
    words = ("ERROR", "Traceback", "CRITICAL", "WORKER TIMEOUT", "exception")
    return [line for line in path.read_text(errors="replace").splitlines() if any(w in line for w in words)]


# ---------------------------------------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the server, run both phases, stop everything; the report as plain data."""
    scratch = Path(tempfile.mkdtemp(prefix="load-test-"))
    model_store, state_dir, server_log = scratch / "model_store", scratch / "state", scratch / "server.log"
    shutil.copytree(ROOT / "model_store", model_store)
    state_dir.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "AUTH_USERS", "AUTH_USERS_FILE", "READ_ONLY", "HOST", "PORT", "PYTHONPATH")}
    env.update(MODEL_STORE=str(model_store), STATE_DIR=str(state_dir), TF_CPP_MIN_LOG_LEVEL="2")
    port = smoke_run.free_port()
    command = gunicorn_command(port, args.workers, args.threads)
    log(f"starting `{' '.join(command)}` in {ROOT} (MODEL_STORE={model_store}, STATE_DIR={state_dir})")
    with open(server_log, "wb") as output:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    master = psutil.Process(server.pid)
    job_id: str | None = None
    trainer_pid: int | None = None
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": os.cpu_count(),
                              "command": command, "clients": args.clients, "seconds": args.seconds,
                              "workers": args.workers, "threads": args.threads, "mix": MIX, "phases": []}
    try:
        log(f"/healthz answered after {wait_until_healthy(port, server):.1f} s")
        log(f"workers idle after {wait_until_idle(master, args.workers):.1f} s more")
        summary = get_json(port, f"/api/models/{MODEL}")
        plan = Plan(
            layers=[layer["name"] for layer in summary["layers"]],
            n_images=summary["test_set_size"],
            top_units=next(layer["units"] for layer in summary["layers"] if layer["name"] == TOP_IMAGES_LAYER),
            dependencies=get_json(port, "/_dash-dependencies"),
        )
        phases = []
        phases.append(run_phase("no training job", port, plan, master, args))
        print_phase(phases[-1])

        job_id = start_job(port, args.seconds)
        job, waited = wait_for_first_batch(port, job_id)
        trainer_pid = job["pid"]
        log(f"training job {job_id} (pid {trainer_pid}) finished its first batch after {waited:.1f} s")
        result = run_phase("training job running", port, plan, master, args, trainer_pid)
        during = job_state(port, job_id)
        final, stop_seconds = stop_job(port, job_id)
        job_id = None
        gone = process_ended(trainer_pid)
        batches = during["batches_done"] - job["batches_done"]
        result.training.update(
            job=final["id"], status=final["status"], batches_per_epoch=during["batches_per_epoch"],
            batches_during_phase=batches, epochs_during_phase=batches / during["batches_per_epoch"],
            stop_seconds=stop_seconds, process_gone=gone,
            progress=f"{batches} batches ({batches / during['batches_per_epoch']:.1f} epochs) trained during the "
                     f"phase; stop -> {final['status']} in {stop_seconds:.1f} s; process gone: {gone}",
        )
        phases.append(result)
        print_phase(result)
        report["phases"] = [asdict(p) for p in phases]
    finally:
        if job_id is not None:  # interrupted or failed with the job running: ask it to stop, then make sure
            log(f"stopping training job {job_id}")
            try:
                stop_job(port, job_id)
            except (OSError, LoadTestFailure) as exc:
                log(f"could not stop job {job_id} through the API: {exc}")
        end_training_process(master, trainer_pid)
        try:
            descendants = master.children(recursive=True)
        except psutil.Error:
            descendants = []
        smoke_run.stop(server)  # gunicorn's whole process group: TERM, then KILL after 10 s
        _, alive = psutil.wait_procs(descendants, timeout=5)
        for process in alive:  # started by our gunicorn, in a session of their own: ours to end
            log(f"process {process.pid} outlived gunicorn; killing it")
            with contextlib.suppress(psutil.Error):
                process.kill()
        problems = server_log_problems(server_log)
        report["server_log_problems"] = problems
        if problems:
            log(f"{len(problems)} problem lines in the server log, e.g.:")
            print(*problems[:10], sep="\n")
        if not report["phases"] and server_log.exists():
            tail = server_log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            print("----- server log (tail) -----", *tail, "-----------------------------", sep="\n", flush=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="length of each phase (default 30)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as make serve)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4, as make serve)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clients' random choices")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    if not 0 < args.seconds <= 3600 or not 1 <= args.clients <= 256 or not 1 <= args.workers <= 16 \
            or not 1 <= args.threads <= 64:
        parser.error("need 0 < seconds <= 3600, 1 <= clients <= 256, 1 <= workers <= 16, 1 <= threads <= 64")

    def on_sigterm(_signum, _frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        report = run(args)
    except (LoadTestFailure, OSError) as failure:
        log(f"FAILED: {failure}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted; server and job stopped")
        sys.exit(130)
    except Terminated:
        sys.exit(143)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, default=str))
        log(f"report written to {args.json}")
    server_errors = sum(phase["overall"]["server_errors"] for phase in report["phases"])
    if server_errors:
        log(f"{server_errors} requests answered 5xx")
        sys.exit(1)


if __name__ == "__main__":
    main()
