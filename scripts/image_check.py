"""``make image-check``: build the container image and prove that it runs.

With the engine the machine has (``docker`` when a Docker daemon answers, else Debian's ``buildah``, which needs
no daemon), this script

1. builds the Dockerfile. With buildah, no registry image can be pulled here, so ``BASE`` is a Debian 12 made
   with ``debootstrap --variant=minbase`` from the mirror apt already uses (cached as a local image, made again
   only when missing); the host's CA bundle is mounted into the build for pip;
2. reads the image's configuration: a non-root ``USER``, the ``/data`` volume, an entrypoint, gunicorn as the
   command and a ``HEALTHCHECK``;
3. runs the entrypoint on a store that holds a user's model (nothing may be copied over or beside it) and on a
   volume the user cannot write (it must stop with a message that says what to do);
4. starts the image's own entrypoint and command on an empty volume, with a login (``AUTH_USERS``), on a free
   loopback port, and checks: ``/healthz`` answers, the image's ``HEALTHCHECK`` command passes inside the
   container, requests without (or with wrong) credentials get 401, and with them ``/api/models``, the
   activations API and the explorer's Dash callbacks answer (the checks of ``scripts/smoke_run.py``); with 88
   slow connections held (64 dripping headers, 16 a body, 8 not reading: ``scripts/slow_clients.py``),
   ``/healthz`` and a logged-in view still answer within a second; the bundled model was copied into the
   empty store, it and the job store belong to the image's non-root user, and no process of the container runs
   as root;
5. stops the server and removes every container and temporary volume it made, whatever happened (the base
   image and the built image stay, for the next run's cache).

Standard library only, run with the system Python as root (buildah and debootstrap need it).

Usage: ``python3 scripts/image_check.py [--engine auto|docker|buildah] [--base IMAGE] [--timeout 300]``
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import filecmp
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import slow_clients
import smoke_run
from smoke_run import SmokeFailure, log

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "localhost/cnn-explorer:check"
# The base made with debootstrap where no registry image can be pulled; kept between runs.
LOCAL_BASE = "localhost/cnn-explorer-base:bookworm"
SUITE = "bookworm"
BASE_PACKAGES = "python3,python3-venv,ca-certificates"
DEBIAN_SUITES = {"buster", "bullseye", "bookworm", "trixie", "forky", "sid",
                 "oldstable", "stable", "testing", "unstable"}
VOLUME = "/data"
BUNDLED_MODEL = ROOT / "model_store" / smoke_run.MODEL
# The login the app supports today (HTTP basic, users from AUTH_USERS). When the mechanism changes, this and
# check_login() are the only places to adapt.
LOGIN_USER, LOGIN_PASSWORD = "alice", "secret"
LOGIN_ENV = {"AUTH_USERS": f"{LOGIN_USER}:{LOGIN_PASSWORD}"}
STOP_GRACE_S = 20


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run a command to completion, failing on a non-zero exit (``check=True`` unless given)."""
    kwargs.setdefault("check", True)
    return subprocess.run(command, stdin=subprocess.DEVNULL, **kwargs)


def output(command: list[str]) -> str:
    """What a command prints on stdout, stripped; it must succeed."""
    return run(command, capture_output=True, text=True).stdout.strip()


def host_ca_bundle() -> str:
    """The CA bundle this machine's Python trusts: pip inside the build must trust the same one."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SmokeFailure("no CA bundle file on this machine for pip inside the build")


def apt_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The first Debian mirror in apt's sources (one-line ``.list`` or deb822 ``.sources``), security excluded."""
    files = [etc_apt / "sources.list", *sorted((etc_apt / "sources.list.d").glob("*.list")),
             *sorted((etc_apt / "sources.list.d").glob("*.sources"))]
    for path in filter(Path.is_file, files):
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            entries = []
            for stanza in re.split(r"\n\s*\n", text):
                fields = dict(re.findall(r"^([A-Za-z-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
                if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes").lower() != "no":
                    entries += [(uri, suite) for uri in fields.get("URIs", "").split()
                                for suite in fields.get("Suites", "").split()]
        else:
            entries = []
            for line in text.splitlines():
                words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], words[2]))
        for uri, suite in entries:
            if suite in DEBIAN_SUITES and uri.startswith(("http://", "https://")):
                return uri
    raise SmokeFailure("no Debian mirror in apt's sources: set DEBIAN_MIRROR")


def ensure_local_base() -> str:
    """The debootstrapped base image, made (≈ 2 min) only when it is not in the local store yet."""
    if run(["buildah", "inspect", "--type", "image", LOCAL_BASE], capture_output=True, check=False).returncode == 0:
        log(f"base {LOCAL_BASE}: cached")
        return LOCAL_BASE
    mirror = os.environ.get("DEBIAN_MIRROR") or apt_mirror()
    started = time.monotonic()
    log(f"base {LOCAL_BASE}: debootstrap {SUITE} (minbase + {BASE_PACKAGES}) from apt's mirror")
    with tempfile.TemporaryDirectory(prefix="image-check-base-", dir="/var/tmp") as scratch:
        rootfs = Path(scratch) / "rootfs"
        run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}", SUITE, str(rootfs), mirror],
            stdout=subprocess.DEVNULL)
        for cache in (rootfs / "var/cache/apt/archives").glob("*.deb"):
            cache.unlink()
        container = output(["buildah", "from", "scratch"])
        try:
            mountpoint = output(["buildah", "mount", container])
            run(["cp", "-a", f"{rootfs}/.", mountpoint])
            run(["buildah", "umount", container])
            run(["buildah", "config", "--cmd", "/bin/sh", container])
            run(["buildah", "commit", "--quiet", container, LOCAL_BASE], stdout=subprocess.DEVNULL)
        finally:
            run(["buildah", "rm", container], stdout=subprocess.DEVNULL, check=False)
    log(f"base {LOCAL_BASE}: made in {time.monotonic() - started:.0f} s")
    return LOCAL_BASE


def session_processes(session: int) -> list[tuple[int, int, int, str]]:
    """(pid, parent pid, uid, argv[0]) of every process in the session ``session`` (its leader's pid)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # Fields after the command's name in parentheses: state, ppid, pgrp, session, ...
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            uid = int(next(line for line in (entry / "status").read_text().splitlines()
                           if line.startswith("Uid:")).split()[1])
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0].decode(errors="replace")
        except (OSError, IndexError, StopIteration, ValueError):
            continue  # gone meanwhile
        if int(fields[3]) == session:
            found.append((int(entry.name), int(fields[1]), uid, argv0))
    return found


class Buildah:
    """Builds with ``buildah bud``, runs with ``buildah from`` + ``buildah run`` (chroot isolation, host network)."""

    name = "buildah"

    def __init__(self) -> None:
        self.containers: list[str] = []

    def default_base(self) -> str:
        return ensure_local_base()

    def build(self, base: str) -> None:
        ca = host_ca_bundle()
        # docker format: the OCI format has no HEALTHCHECK. --layers: an unchanged requirements.txt reuses the
        # virtualenv's layer.
        run(["buildah", "bud", "--isolation", "chroot", "--layers", "--format", "docker",
             "-v", f"{ca}:{ca}:ro", "--build-arg", f"PIP_CERT={ca}", "--build-arg", f"BASE={base}",
             "-t", IMAGE, str(ROOT)])

    def config(self) -> dict:
        return json.loads(output(["buildah", "inspect", "--type", "image", IMAGE]))["Docker"]["config"]

    def create(self) -> str:
        container = output(["buildah", "from", IMAGE])
        self.containers.append(container)
        # buildah run mounts a declared volume from its own storage over a -v of the same path: drop the
        # declaration in this working container so the check's folder is what /data is.
        run(["buildah", "config", "--volume", f"{VOLUME}-", container])
        return container

    def command(self, container: str, volume: Path, env: dict[str, str], argv: list[str]) -> list[str]:
        env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
        return ["buildah", "run", "--isolation", "chroot", "--volume", f"{volume}:{VOLUME}", *env_flags,
                container, "--", *argv]

    def exec_command(self, container: str, volume: Path, env: dict[str, str], argv: list[str]) -> list[str]:
        """A second process in the running container: buildah runs it beside the first, on the same root."""
        return self.command(container, volume, env, argv)

    def app_processes(self, server: subprocess.Popen) -> list[tuple[int, int, int, str]]:
        """The processes the image's command started: the session of ``buildah run`` less buildah's own."""
        return [p for p in session_processes(server.pid) if not Path(p[3]).name.startswith("buildah")]

    def stop(self, server: subprocess.Popen) -> None:
        """As ``docker stop``: SIGTERM to the command's first process, SIGKILL to whatever is left after the grace."""
        processes = self.app_processes(server)
        pids = {p[0] for p in processes}
        for pid, parent, _, _ in processes:
            if parent not in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while self.app_processes(server) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not self.app_processes(server):
            # buildah run removes its run folder (under /var/tmp) and exits once its command has: a signal now
            # would leave the folder behind.
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=STOP_GRACE_S)
        smoke_run.stop(server)
        for pid, _, _, argv0 in session_processes(server.pid):
            log(f"killing leftover pid {pid} ({argv0})")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove_all(self) -> None:
        for container in self.containers:
            run(["buildah", "rm", container], stdout=subprocess.DEVNULL, check=False)
        self.containers.clear()


class Docker:
    """Builds with ``docker build``, runs with ``docker run --network host`` (same loopback port as buildah)."""

    name = "docker"

    def __init__(self) -> None:
        self.containers: list[str] = []

    def default_base(self) -> str:
        return ""  # the Dockerfile's own default, pulled from the registry

    def build(self, base: str) -> None:
        run(["docker", "build", *(["--build-arg", f"BASE={base}"] if base else []), "-t", IMAGE, str(ROOT)])

    def config(self) -> dict:
        return json.loads(output(["docker", "image", "inspect", IMAGE]))[0]["Config"]

    def create(self) -> str:
        return f"cnn-explorer-check-{os.getpid()}"

    def command(self, container: str, volume: Path, env: dict[str, str], argv: list[str]) -> list[str]:
        """``docker run`` in the foreground, a container of its own named after ``container`` for each call."""
        name = f"{container}-{len(self.containers)}"
        self.containers.append(name)
        env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
        return ["docker", "run", "--name", name, "--network", "host", "--volume", f"{volume}:{VOLUME}",
                *env_flags, "--entrypoint", argv[0], IMAGE, *argv[1:]]

    def exec_command(self, container: str, volume: Path, env: dict[str, str], argv: list[str]) -> list[str]:
        """A second process in the container started last."""
        env_flags = [flag for key, value in env.items() for flag in ("--env", f"{key}={value}")]
        return ["docker", "exec", *env_flags, self.containers[-1], *argv]

    def app_processes(self, server: subprocess.Popen) -> list[tuple[int, int, int, str]]:
        return []  # the daemon's processes, not children of this script: the files on the volume tell the uid

    def stop(self, server: subprocess.Popen) -> None:
        if self.containers:
            run(["docker", "stop", "--time", str(STOP_GRACE_S), self.containers[-1]], capture_output=True,
                check=False)
        smoke_run.stop(server)

    def remove_all(self) -> None:
        for container in self.containers:
            run(["docker", "rm", "--force", container], capture_output=True, check=False)
        self.containers.clear()


def pick_engine(choice: str) -> Buildah | Docker:
    if choice == "docker" or (choice == "auto" and shutil.which("docker")
                              and run(["docker", "info"], capture_output=True, check=False).returncode == 0):
        return Docker()
    if not shutil.which("buildah"):
        raise SmokeFailure("neither a Docker daemon nor buildah here (make image-check installs buildah)")
    return Buildah()


def check_config(config: dict) -> tuple[list[str], list[str], list[str]]:
    """The image runs as a non-root user, declares the volume, an entrypoint, gunicorn and a health check.

    Returns:
        The entrypoint, the command (gunicorn) and the health check's command.
    """
    user = (config.get("User") or "").split(":")[0]
    if user in ("", "0", "root"):
        raise SmokeFailure(f"the image runs as root (USER {config.get('User')!r})")
    if VOLUME not in (config.get("Volumes") or {}):
        raise SmokeFailure(f"the image declares no {VOLUME} volume: {config.get('Volumes')}")
    entrypoint, cmd = config.get("Entrypoint") or [], config.get("Cmd") or []
    if not entrypoint or "gunicorn" not in " ".join(cmd) or "--preload" in " ".join(cmd):
        raise SmokeFailure(f"expected an entrypoint and gunicorn without --preload, got {entrypoint} {cmd}")
    test = (config.get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] not in ("CMD", "CMD-SHELL"):
        raise SmokeFailure(f"the image has no HEALTHCHECK command: {config.get('Healthcheck')}")
    healthcheck = test[1:] if test[0] == "CMD" else ["sh", "-c", test[1]]
    log(f"image config: USER {config['User']}, VOLUME {VOLUME}, ENTRYPOINT {entrypoint}, CMD {cmd}")
    return entrypoint, cmd, healthcheck


def new_volume(owner: tuple[int, int] | None) -> Path:
    """An empty folder to mount as the volume, owned by ``owner`` (uid, gid) or left to root."""
    volume = Path(tempfile.mkdtemp(prefix="image-check-volume-"))
    if owner:
        os.chown(volume, *owner)
    return volume


def check_entrypoint(engine: Buildah | Docker, container: str, entrypoint: list[str], owner: tuple[int, int],
                     volumes: list[Path]) -> None:
    """The entrypoint never touches a store with a user's model, and explains a volume it cannot write."""
    volume = new_volume(owner)
    volumes.append(volume)
    own = volume / "model_store" / "my-model"
    own.mkdir(parents=True)
    (own / "model.keras").write_bytes(b"the user's own model")
    run(["chown", "-R", f"{owner[0]}:{owner[1]}", str(volume)])
    run(engine.command(container, volume, {}, [*entrypoint, "true"]))
    entries = sorted(p.name for p in (volume / "model_store").iterdir())
    if entries != ["my-model"] or (own / "model.keras").read_bytes() != b"the user's own model":
        raise SmokeFailure(f"the entrypoint changed a store that held a user's model: {entries}")
    log("a store with a user's model is left as it is by the entrypoint")

    locked = new_volume(None)
    volumes.append(locked)
    done = run(engine.command(container, locked, {}, [*entrypoint, "true"]), capture_output=True, text=True,
               check=False)
    if done.returncode == 0 or "chown" not in done.stderr:
        raise SmokeFailure(f"on a volume it cannot write the entrypoint answered {done.returncode}: {done.stderr}")
    said = [line for line in done.stderr.splitlines() if line.startswith("entrypoint:")]
    log(f"a volume it cannot write stops the entrypoint: {said[0] if said else done.stderr.strip()}")


def basic_auth(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def check_login(base: str) -> dict[str, str]:
    """No credentials and wrong ones get 401, the right ones 200; returns the headers that log in."""
    for headers, expected, what in (({}, 401, "no credentials"),
                                    (basic_auth(LOGIN_USER, "wrong"), 401, "a wrong password"),
                                    (basic_auth(LOGIN_USER, LOGIN_PASSWORD), 200, f"{LOGIN_USER}'s login")):
        status, content = smoke_run.http("GET", base + "/api/models", headers=headers)
        log(f"GET /api/models with {what} -> {status}")
        if status != expected:
            raise SmokeFailure(f"GET /api/models with {what} answered {status}, expected {expected}")
    if smoke_run.MODEL not in {m["name"] for m in json.loads(content)["models"]}:
        raise SmokeFailure(f"/api/models does not list {smoke_run.MODEL}")
    return basic_auth(LOGIN_USER, LOGIN_PASSWORD)


def check_volume(volume: Path, owner: tuple[int, int]) -> None:
    """The bundled model was copied whole into the empty store; the volume's files belong to the user."""
    copied = volume / "model_store" / smoke_run.MODEL
    comparison = filecmp.dircmp(BUNDLED_MODEL, copied)
    if comparison.left_only or comparison.right_only or filecmp.cmpfiles(
            BUNDLED_MODEL, copied, comparison.common_files, shallow=False)[1:] != ([], []):
        raise SmokeFailure(f"{copied} is not a copy of the bundled model")
    files = [volume / "model_store", copied, *copied.iterdir(), volume / "state", *(volume / "state").iterdir()]
    wrong = [f"{p} ({p.stat().st_uid}:{p.stat().st_gid})" for p in files if (p.stat().st_uid, p.stat().st_gid) != owner]
    if wrong:
        raise SmokeFailure(f"files on the volume not owned by {owner[0]}:{owner[1]}: {wrong}")
    log(f"volume: bundled {smoke_run.MODEL} copied into the empty store; store and state owned by "
        f"{owner[0]}:{owner[1]}")


def serve_and_check(engine: Buildah | Docker, container: str, server_argv: list[str], healthcheck: list[str],
                    owner: tuple[int, int], volumes: list[Path], server_log: Path, timeout_s: float) -> None:
    """Start the image's entrypoint and command on an empty volume with a login, check it, always stop it."""
    volume = new_volume(owner)
    volumes.append(volume)
    port = smoke_run.free_port()
    base = f"http://127.0.0.1:{port}"
    # The host's network: listen on loopback only.
    env = {"PORT": str(port), "HOST": "127.0.0.1", **LOGIN_ENV}
    log(f"starting the image's command on {base} ({engine.name}, volume {volume})")
    with open(server_log, "wb") as sink:
        server = subprocess.Popen(engine.command(container, volume, env, server_argv), stdin=subprocess.DEVNULL,
                                  stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        smoke_run.wait_until_healthy(base, server, timeout_s)
        checked = run(engine.exec_command(container, volume, env, healthcheck), capture_output=True, text=True,
                      check=False)
        if checked.returncode != 0:
            raise SmokeFailure(f"the HEALTHCHECK command failed ({checked.returncode}): {checked.stderr[-500:]}")
        log("the image's HEALTHCHECK command passes inside the container")
        headers = check_login(base)
        smoke_run.check_app(base, headers)
        try:
            slow_clients.check(base, headers, log=log)
        except AssertionError as failure:
            raise SmokeFailure(str(failure)) from None
        check_volume(volume, owner)
        processes = engine.app_processes(server)
        if isinstance(engine, Buildah) and not processes:
            raise SmokeFailure("found no process of the container's command")
        if processes:
            uids = sorted({uid for _, _, uid, _ in processes})
            if 0 in uids:
                raise SmokeFailure(f"processes of the container run as root: {processes}")
            log(f"the container's {len(processes)} processes (gunicorn and its workers) run as uid "
                f"{', '.join(map(str, uids))}")
        if server.poll() is not None:
            raise SmokeFailure(f"the server exited with code {server.returncode} during the checks")
        # What `docker stop` does: SIGTERM to the command's first process, which must be gunicorn's master.
        engine.stop(server)
        if "Shutting down: Master" not in server_log.read_text(errors="replace"):
            raise SmokeFailure("gunicorn did not shut down on SIGTERM")
        log("gunicorn shut down on SIGTERM")
    finally:
        engine.stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("auto", "docker", "buildah"), default=os.environ.get("ENGINE", "auto"))
    parser.add_argument("--base", default=os.environ.get("BASE", ""),
                        help="BASE image (default: the Dockerfile's; with buildah a debootstrapped Debian 12)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds the server may take to answer /healthz")
    args = parser.parse_args()
    smoke_run.LOG_PREFIX = "image-check"

    def on_sigterm(_signum, _frame):
        raise smoke_run.Terminated()

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="image-check-"))
    server_log = scratch / "server.log"
    volumes: list[Path] = []
    engine = None
    try:
        engine = pick_engine(args.engine)
        base = args.base or engine.default_base()
        log(f"building {IMAGE} with {engine.name} from BASE={base or 'the Dockerfile default'}")
        build_started = time.monotonic()
        engine.build(base)
        log(f"image built in {time.monotonic() - build_started:.0f} s")
        entrypoint, cmd, healthcheck = check_config(engine.config())
        container = engine.create()
        ids = run(engine.command(container, scratch, {}, ["sh", "-c", "echo $(id -u) $(id -g)"]),
                  capture_output=True, text=True).stdout.split()
        owner = (int(ids[0]), int(ids[1]))
        check_entrypoint(engine, container, entrypoint, owner, volumes)
        serve_and_check(engine, container, entrypoint + cmd, healthcheck, owner, volumes, server_log, args.timeout)
        log(f"passed in {time.monotonic() - started:.0f} s: the image builds, runs as {owner[0]}:{owner[1]}, "
            "fills an empty store, answers /healthz, its HEALTHCHECK, a view and a login, slow clients or not")
    except smoke_run.Terminated:
        log("terminated")
        raise SystemExit(143) from None
    except (SmokeFailure, subprocess.CalledProcessError, OSError, LookupError, TypeError, ValueError) as failure:
        log(f"FAILED: {failure}")
        if server_log.exists():
            tail = server_log.read_text(errors="replace").splitlines()[-smoke_run.LOG_TAIL_LINES:]
            print("----- container log (tail) -----", *tail, "--------------------------------", sep="\n", flush=True)
        raise SystemExit(1) from None
    finally:
        if engine is not None:
            engine.remove_all()
        for volume in volumes:
            shutil.rmtree(volume, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
