"""Smoke test of ``make run`` from a virtualenv built from requirements.txt alone.

The dev requirements install on top of the runtime ones, so a package that only they pull in (Pillow arrived
with matplotlib) lets every test pass while ``make run`` on a fresh clone crashes at import. This script builds a
virtualenv with the Makefile's own recipe, checks that it holds exactly what requirements.txt pins, starts the app
exactly as ``make run`` does (only ``VENV`` and ``PORT`` are set), and checks that ``/``, ``/healthz``, the
activations API and the explorer's real Dash callbacks answer. On any failure it prints the server's log tail and
exits non-zero; the server's whole process group is stopped in every case.

Which virtualenv: ``--venv DIR`` if given; else the checkout's ``.venv`` when it does not exist yet (a fresh clone,
as in CI: ``make test`` later adds the dev packages to it, so the smoke test installs nothing twice); else a new
temporary one, removed afterwards.

Standard library only: it runs with the system Python, outside every virtualenv.

Usage: ``python3 scripts/smoke_run.py [--venv DIR] [--timeout 180]``
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements.txt"
DEFAULT_VENV = ROOT / ".venv"
# What `python -m venv` and the Makefile's pip upgrade put into every virtualenv, pinned or not.
VENV_TOOLS = {"pip", "setuptools"}
MODEL = "mnist-cnn"
LAYER = "Conv2D_1"
# Conv2D_1 of the bundled model: 32 maps of 26x26 on a 28x28 input.
LAYER_SHAPE = [26, 26, 32]
# Settings the app reads from the environment: dropped so the server runs on the defaults of a fresh clone.
APP_SETTINGS = ("MODEL_STORE", "STATE_DIR", "REDIS_URL", "AUTH_USERS", "AUTH_USERS_FILE", "READ_ONLY",
                "ACTIVATION_CACHE_SIZE", "HOST", "PORT")
# Variables through which an outer environment's packages could reach the runtime virtualenv's Python.
OUTER_PYTHON = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
LOG_TAIL_LINES = 40
# What every progress line starts with (scripts/image_check.py, which reuses these checks, says its own name).
LOG_PREFIX = "smoke"
REQUEST_TIMEOUT_S = 60


class SmokeFailure(Exception):
    """A check that did not pass, with what was expected and what came back."""


class Terminated(Exception):
    """SIGTERM arrived: unwind so the server and the temporary virtualenv are cleaned up."""


def log(message: str) -> None:
    """One progress line, prefixed so it stands out in the CI log."""
    print(f"{LOG_PREFIX}: {message}", flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http(method: str, url: str, body: dict | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """Send one request (with ``headers`` added, e.g. a login); return (status, body) for any HTTP answer, raise
    ``OSError`` when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def fetch(base: str, path: str, method: str = "GET", body: dict | None = None, what: str = "",
          headers: dict[str, str] | None = None) -> bytes:
    """``method path`` must answer 200; log it (with ``what`` it asked for) and return the body."""
    status, content = http(method, base + path, body, headers)
    log(f"{method} {path}{f' ({what})' if what else ''} -> {status} ({len(content)} bytes)")
    if status != 200:
        raise SmokeFailure(f"{method} {path} answered {status}: {content[:500]!r}")
    return content


def build_runtime_venv(venv: Path, env: dict[str, str]) -> None:
    """Build ``venv`` with the Makefile's ``$(VENV)/.runtime`` recipe: requirements.txt and nothing else."""
    started = time.monotonic()
    subprocess.run(["make", "--no-print-directory", f"VENV={venv}", f"{venv}/.runtime"], cwd=ROOT, env=env,
                   check=True)
    log(f"runtime virtualenv {venv} ready in {time.monotonic() - started:.0f} s")


def normalise(name: str) -> str:
    """A distribution name as pip compares them: lowercase, runs of ``-_.`` as one ``-``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pinned_names(requirements: Path) -> set[str]:
    """The normalised names of the ``name==version`` lines of ``requirements``."""
    names = set()
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(normalise(re.split(r"[\[<>=!~;@ ]", line, maxsplit=1)[0]))
    return names


def check_runtime_only(venv: Path, env: dict[str, str]) -> None:
    """Every distribution installed in ``venv`` is pinned in requirements.txt: no dev package, nothing unpinned."""
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout
    installed = {normalise(entry["name"]) for entry in json.loads(listed)}
    extra = sorted(installed - pinned_names(REQUIREMENTS) - VENV_TOOLS)
    if extra:
        raise SmokeFailure(f"{venv} holds distributions requirements.txt does not pin: {', '.join(extra)}")
    log(f"{venv} holds only requirements.txt's pins ({len(installed)} distributions)")


def wait_until_healthy(base: str, server: subprocess.Popen, timeout_s: float) -> None:
    """Poll ``/healthz`` until it answers 200; fail early if the server exits, or after ``timeout_s``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if server.poll() is not None:
            raise SmokeFailure(f"the server exited with code {server.returncode} before answering")
        try:
            status, _ = http("GET", base + "/healthz")
        except OSError:
            status = None
        if status == 200:
            log(f"server answered after {time.monotonic() - started:.0f} s")
            return
        time.sleep(1)
    raise SmokeFailure(f"/healthz did not answer 200 within {timeout_s:.0f} s")


def stop(server: subprocess.Popen) -> None:
    """Stop the server's whole process group (make and the Python it started): TERM, then KILL after 10 s."""
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    except ProcessLookupError:
        pass


def split_outputs(output: str) -> list[dict[str, str]]:
    """The ``outputs`` list of a callback request from the dependency's output key.

    A multi-output key looks like ``..a.figure...b.children@3f2e..``; ``@hash`` marks an ``allow_duplicate``
    output and is not part of the property name.
    """
    outputs = []
    for item in output.strip(".").split("..."):
        component_id, _, prop = item.rpartition(".")
        outputs.append({"id": component_id, "property": prop.split("@")[0]})
    return outputs


def callback_request(dependencies: list[dict], output: str, values: dict[str, object]) -> dict:
    """The body the Dash renderer posts to ``/_dash-update-component`` for the callback that sets ``output``.

    Args:
        dependencies: the answer of ``/_dash-dependencies``.
        output: ``component-id.property`` of one of the callback's outputs.
        values: ``component-id.property`` -> value for every input (states default to None).
    """
    for dependency in dependencies:
        if dependency.get("clientside_function"):
            continue  # runs in the browser (e.g. a grid's outline): the server never answers it
        outputs = split_outputs(dependency["output"])
        if any(f"{o['id']}.{o['property']}" == output for o in outputs):
            break
    else:
        raise SmokeFailure(f"no callback sets {output} in /_dash-dependencies")
    inputs = []
    for dep in dependency["inputs"]:
        key = f"{dep['id']}.{dep['property']}"
        if key not in values:
            raise SmokeFailure(f"the callback of {output} takes input {key}, which this check does not supply")
        inputs.append({**dep, "value": values[key]})
    state = [{**dep, "value": values.get(f"{dep['id']}.{dep['property']}")} for dep in dependency["state"]]
    multi = dependency["output"].startswith("..")
    return {
        "output": dependency["output"],
        "outputs": outputs if multi else outputs[0],
        "inputs": inputs,
        "state": state,
        "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
    }


# What the explorer's render callback is posted when / opens on MODEL at LAYER, image 0.
WARM_TIMEOUT_S = 120
EXPLORER_RENDER_INPUTS = {
    "explore-model.value": MODEL, "explore-layer.value": LAYER, "explore-image.value": 0,
    "explore-cmap.value": "viridis", "explore-reverse.value": False, "explore-scale.value": False,
    "explore-fixed.value": False, "explore-own-image.data": None, "still-computing-poll.n_intervals": None,
    "explore-order.value": "model", "explore-page.data": None, "explore-image-asked.data": None,
}


def check_app(base: str, headers: dict[str, str] | None = None) -> None:
    """The checks: every request (with ``headers``, e.g. a login) must answer 200 with the content a browser or
    a script would use."""
    page = fetch(base, "/", headers=headers)
    if b"CNN Activation Explorer" not in page:
        raise SmokeFailure("/ does not carry the app's title")

    health = json.loads(fetch(base, "/healthz", headers=headers))
    if health.get("status") != "ok" or health.get("models", 0) < 1:
        raise SmokeFailure(f"/healthz reports {health}")
    # the default model is opened in the background (make run) or before a worker serves (gunicorn)
    waited = time.monotonic()
    while not health.get("warm"):
        if time.monotonic() - waited > WARM_TIMEOUT_S:
            raise SmokeFailure(f"the default model was not opened {WARM_TIMEOUT_S} s after /healthz answered")
        time.sleep(0.1)
        health = json.loads(http("GET", base + "/healthz", None, headers)[1])
    log(f"default model open {time.monotonic() - waited:.1f} s after the first /healthz")

    activations = json.loads(fetch(base, f"/api/models/{MODEL}/activations?layer={LAYER}&image=0", headers=headers))
    if activations.get("shape") != LAYER_SHAPE:
        raise SmokeFailure(f"activations of {LAYER} have shape {activations.get('shape')}, expected {LAYER_SHAPE}")

    dependencies = json.loads(fetch(base, "/_dash-dependencies", headers=headers))
    # The page router: what a browser that opens / asks for first; it runs explore.layout.
    routed = fetch(base, "/_dash-update-component", "POST", callback_request(
        dependencies, "_pages_content.children",
        {"_pages_location.pathname": "/", "_pages_location.search": f"?model={MODEL}&layer={LAYER}"},
    ), what="page router: explorer layout", headers=headers)
    if b"explore-heatmap" not in routed:
        raise SmokeFailure("the router's answer for / lacks the explorer's heatmap")
    # The explorer's render callback: the heatmap, input image and probabilities of one view.
    rendered = json.loads(fetch(base, "/_dash-update-component", "POST", callback_request(
        dependencies, "explore-heatmap.figure",
        EXPLORER_RENDER_INPUTS,
    ), what=f"explorer render: {MODEL} {LAYER} image 0", headers=headers))
    heatmap = rendered["response"]["explore-heatmap"]["figure"]["data"][0]
    z = heatmap["z"]
    rows, cols = (int(n) for n in z["shape"].split(","))
    if heatmap["type"] != "heatmap" or z["dtype"] != "u1" or len(base64.b64decode(z["bdata"])) != rows * cols:
        raise SmokeFailure(f"the explorer's heatmap is not a {rows}x{cols} grid of colour codes")
    # The exact values the hover label reads: the grid route the figure names, the same shape in float32.
    values = fetch(base, heatmap["meta"]["values"], what="the grid's exact values", headers=headers)
    if len(values) != rows * cols * 4:
        raise SmokeFailure(f"the grid's exact values are {len(values)} bytes, not {rows}x{cols} float32")
    log(f"explorer callback: {heatmap['type']} {rows}x{cols} of {LAYER}, image 0, with its exact values")
    # What ◀ ▶ draw: the same view of the next image, from the explorer-view route.
    stepped = json.loads(fetch(base, f"/api/models/{MODEL}/explorer-view?layer={LAYER}&image=1",
                               what="the explorer's view of image 1", headers=headers))
    if stepped["heatmap"]["data"][0]["z"].get("shape") != z["shape"] or "image=1" not in stepped["query"]:
        raise SmokeFailure(f"the explorer-view route's grid of image 1 is not a {rows}x{cols} grid of image 1")


def serve_and_check(venv: Path, env: dict[str, str], server_log: Path, timeout_s: float) -> None:
    """Start ``make run`` from ``venv`` on a free port, wait for it, run the checks; always stop it."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = ["make", "--no-print-directory", "run", f"VENV={venv}", f"PORT={port}"]
    log(f"starting `{' '.join(command)}`")
    with open(server_log, "wb") as output:
        # A session of its own: make and the Python it starts are stopped together through the process group.
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_healthy(base, server, timeout_s)
        check_app(base)
        if server.poll() is not None:
            raise SmokeFailure(f"the server exited with code {server.returncode} during the checks")
    finally:
        stop(server)


def run(venv: Path | None, timeout_s: float) -> None:
    """Build (or reuse) the runtime virtualenv, serve the app from it as ``make run`` does, check it, stop it.

    Args:
        venv: the virtualenv to use; None picks one as the module docstring says.
        timeout_s: how long the server may take to answer ``/healthz``.
    """
    env = {key: value for key, value in os.environ.items() if key not in APP_SETTINGS + OUTER_PYTHON}
    scratch = Path(tempfile.mkdtemp(prefix="smoke-run-"))
    server_log = scratch / "server.log"
    if venv is None:
        # An existing .venv may hold the dev packages: then a virtualenv of our own, removed with the scratch folder.
        venv = scratch / "venv" if DEFAULT_VENV.exists() else DEFAULT_VENV
    venv = venv.resolve()
    try:
        build_runtime_venv(venv, env)
        check_runtime_only(venv, env)
        serve_and_check(venv, env, server_log, timeout_s)
        log("passed: `make run` from a runtime-only virtualenv serves the explorer")
    except (SmokeFailure, subprocess.CalledProcessError, OSError, LookupError, TypeError, ValueError) as failure:
        log(f"FAILED: {failure}")
        if server_log.exists():
            tail = server_log.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            print("----- server log (tail) -----", *tail, "-----------------------------", sep="\n", flush=True)
        raise SystemExit(1) from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path,
                        help="virtualenv to build or reuse (default: .venv if absent, else a temporary one)")
    parser.add_argument("--timeout", type=float, default=180, help="seconds the server may take to answer /healthz")
    args = parser.parse_args()

    def on_sigterm(_signum, _frame):
        raise Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        run(args.venv, args.timeout)
    except Terminated:
        sys.exit(143)


if __name__ == "__main__":
    main()
