"""A gunicorn of any checkout of the project on a free port of 127.0.0.1, for the benchmarks that need a server.

``served(tree)`` starts gunicorn from ``tree`` (this checkout, or an older one extracted for a same-run baseline)
as that tree's ``make serve`` starts it, with a copy of its ``model_store/`` and a fresh ``STATE_DIR``, waits for
``/healthz`` and for the workers' warm-up, yields a :class:`Server`, and stops gunicorn's whole process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import load_test  # noqa: E402  (bench/ is a folder of scripts, not a package)

HOST = load_test.HOST
MODEL = load_test.MODEL


@dataclass
class Server:
    """A running gunicorn: its port, master process, command line and what the explorer's callbacks look like."""

    port: int
    master: psutil.Process
    command: list[str]
    dependencies: list[dict]
    layers: list[str]
    n_images: int

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def workers(self) -> list[psutil.Process]:
        return load_test.workers_of(self.master)

    def worker_rss_mb(self) -> list[float]:
        return [value for worker in self.workers() if (value := load_test.rss_mb(worker)) is not None]


def serve_command(tree: Path, port: int, workers: int | None, threads: int | None) -> list[str]:
    """gunicorn as ``make serve`` runs it; ``workers``/``threads`` None: as the tree's gunicorn_conf.py says."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn)]
    if workers is not None:
        command += ["--workers", str(workers)]
    if threads is not None:
        command += ["--threads", str(threads)]
    return [*command, "--bind", f"{HOST}:{port}", "--no-control-socket", "--config", "app/gunicorn_conf.py",
            "app.main:server"]


@contextlib.contextmanager
def served(tree: Path, workers: int | None = None, threads: int | None = None,
           expected_workers: int = 2) -> Iterator[Server]:
    """Run gunicorn from ``tree`` until the block ends (see the module docstring)."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    store, state, log_path = scratch / "model_store", scratch / "state", scratch / "server.log"
    shutil.copytree(tree / "model_store", store)
    state.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "AUTH_USERS", "AUTH_USERS_FILE", "READ_ONLY", "HOST", "PORT", "PYTHONPATH",
                          "WORKERS", "THREADS")}
    env.update(MODEL_STORE=str(store), STATE_DIR=str(state), TF_CPP_MIN_LOG_LEVEL="2")
    port = load_test.smoke_run.free_port()
    command = serve_command(tree, port, workers, threads)
    with open(log_path, "wb") as output:
        process = subprocess.Popen(command, cwd=tree, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    master = psutil.Process(process.pid)
    try:
        load_test.wait_until_healthy(port, process)
        load_test.wait_until_idle(master, workers or expected_workers)
        summary = load_test.get_json(port, f"/api/models/{MODEL}")
        yield Server(port, master, command, load_test.get_json(port, "/_dash-dependencies"),
                     [layer["name"] for layer in summary["layers"]], summary["test_set_size"])
    except BaseException:
        if log_path.exists():
            print(*log_path.read_text(errors="replace").splitlines()[-30:], sep="\n", file=sys.stderr)
        raise
    finally:
        load_test.smoke_run.stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


def render_body(server: Server, layer: str, image: int, changed: str = "explore-image-asked.data") -> bytes:
    """The explorer's render callback for (layer, image), as dash-renderer posts it."""
    return json.dumps(load_test.explorer_render(server.dependencies, layer, image, changed=changed)).encode()
