"""A gunicorn of any checkout of the project on a free port of 127.0.0.1, for the benchmarks that need a server.

``served(tree)`` starts gunicorn from ``tree`` (this checkout, or an older one extracted for a same-run baseline)
as that tree's ``make serve`` starts it, with a copy of its ``model_store/`` and a fresh ``STATE_DIR``, waits for
``/healthz`` and for the workers' warm-up, yields a :class:`Server`, and stops gunicorn's whole process group.

What one explorer view costs differs by design: a tree with the explorer-view route (``GET
/api/models/<model>/explorer-view``, the answer the browser draws a stepped image from) serves a step with it, an
older tree with the render callback (``POST /_dash-update-component``). :attr:`Server.view_route` says which the
served tree has; :func:`view_request` is that tree's request for one view.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
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
    view_route: bool  # the tree answers the explorer-view route: a step is one GET of it, not the render callback

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


def fresh_state(tree: Path, store: Path, state: Path) -> dict[str, str]:
    """A copy of ``tree``'s ``model_store/`` at ``store``, an empty ``state`` folder, and the environment a server
    of ``tree`` runs with on them: this one without the settings that would change what it serves (a login, Redis,
    read-only, an address), as on a fresh clone."""
    shutil.copytree(tree / "model_store", store)
    state.mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "AUTH_USERS", "AUTH_USERS_FILE", "READ_ONLY", "HOST", "PORT", "PYTHONPATH",
                          "WORKERS", "THREADS")}
    env.update(MODEL_STORE=str(store), STATE_DIR=str(state), TF_CPP_MIN_LOG_LEVEL="2")
    return env


@contextlib.contextmanager
def served(tree: Path, workers: int | None = None, threads: int | None = None,
           expected_workers: int = 2) -> Iterator[Server]:
    """Run gunicorn from ``tree`` until the block ends (see the module docstring)."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    store, state, log_path = scratch / "model_store", scratch / "state", scratch / "server.log"
    env = fresh_state(tree, store, state)
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
        layers = [layer["name"] for layer in summary["layers"]]
        status, _ = load_test.request(port, "GET", explorer_view_path(layers[0], 0))
        yield Server(port, master, command, load_test.get_json(port, "/_dash-dependencies"), layers,
                     summary["test_set_size"], view_route=status == 200)
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


def explorer_view_path(layer: str, image: int, cmap: str = "viridis") -> str:
    """The explorer-view route's URL for (``layer``, ``image``) of :data:`MODEL`, with the query the page's stepping
    sends (``assets/image_stepping.js``: the view's query without the model)."""
    query = urllib.parse.urlencode({"layer": layer, "image": image, "cmap": cmap})
    return f"/api/models/{MODEL}/explorer-view?{query}"


@dataclass(frozen=True)
class ViewRequest:
    """One explorer view as the served tree's design asks for it: method, path, body (None for a GET), and the
    bytes whose presence in the decoded answer shows it holds a view (a failed callback answers 200 too)."""

    method: str
    path: str
    body: bytes | None
    proof: bytes


# What each design sends for one view, as the results name it.
VIEW_ROUTE_REQUEST = f"GET /api/models/{MODEL}/explorer-view (the route the page steps images with)"
RENDER_CALLBACK_REQUEST = "POST /_dash-update-component (the explorer's render callback)"


def view_request(server: Server, layer: str, image: int) -> ViewRequest:
    """The request for one view of (``layer``, ``image``) in the served tree's design (see the module docstring)."""
    if server.view_route:
        return ViewRequest("GET", explorer_view_path(layer, image), None, b'"heatmap"')
    return ViewRequest("POST", "/_dash-update-component", render_body(server, layer, image), b'"explore-heatmap"')


def view_request_name(server: Server) -> str:
    """Which request :func:`view_request` sends to ``server``, in words."""
    return VIEW_ROUTE_REQUEST if server.view_route else RENDER_CALLBACK_REQUEST
