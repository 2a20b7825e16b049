"""Real services for tests: a redis-server on a free port, started and stopped by the test (no mocks)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def redis_server(timeout: float = 10.0) -> Iterator[str]:
    """Run Debian's redis-server in the foreground on a free port without persistence; yield its URL."""
    import redis

    binary = shutil.which("redis-server") or "/usr/sbin/redis-server"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--daemonize", "no", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(url)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        yield url
    finally:
        stop_process(process, timeout=10)


def stop_process(process: subprocess.Popen, timeout: float) -> None:
    """Ask a service subprocess to exit (SIGTERM), and kill it if it has not within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()


@contextlib.contextmanager
def celery_worker(env: dict[str, str], log_path, queues: str | None = None) -> Iterator[subprocess.Popen]:
    """Run a real ``celery worker --pool=solo`` of the app (on ``queues``, e.g. ``layers``; default: all) with
    ``env``, its output in ``log_path``; stopped on exit, its log's end logged."""
    import logging
    import os
    import sys

    from app.config import PROJECT_ROOT

    command = [sys.executable, "-m", "celery", "-A", "app.jobs.celery_worker:celery_app", "worker", "--pool=solo",
               "--concurrency=1", *(["-Q", queues] if queues else []), "--loglevel=INFO", "--without-gossip",
               "--without-mingle", "--without-heartbeat"]
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(command, cwd=PROJECT_ROOT, env={**os.environ, **env}, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            yield worker
        finally:
            stop_process(worker, timeout=20)
    logging.getLogger(__name__).info("celery worker log:\n%s", Path(log_path).read_text()[-3000:])
