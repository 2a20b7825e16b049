"""Real services for tests: a redis-server on a free port, started and stopped by the test (no mocks)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator


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
