"""The container's entrypoint and the mirror ``make image-check`` debootstraps from, without a container.

``make image-check`` (``scripts/image_check.py``) builds the image and runs these same paths inside it; these
tests pin the entrypoint's rules on the host in a second: an empty store gets the bundled model, a store with
anything of the user's is never touched, a store it cannot use stops it with a message, then it runs the command.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

ENTRYPOINT = PROJECT_ROOT / "scripts" / "container_entrypoint.sh"
BUNDLED = PROJECT_ROOT / "model_store"


def _image_check_module():
    """``scripts/image_check.py`` (run by ``make image-check`` with the system Python; it imports smoke_run)."""
    sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
    try:
        spec = importlib.util.spec_from_file_location("image_check", PROJECT_ROOT / "scripts" / "image_check.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(PROJECT_ROOT / "scripts"))


image_check = _image_check_module()


def entrypoint(tmp_path: Path, *command: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MODEL_STORE": str(tmp_path / "data" / "model_store"),
           "STATE_DIR": str(tmp_path / "data" / "state"), "BUNDLED_MODELS": str(BUNDLED)}
    return subprocess.run(["sh", str(ENTRYPOINT), *command], env=env, capture_output=True, text=True, check=False)


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_empty_store_gets_the_bundled_model_then_the_command_runs(tmp_path):
    done = entrypoint(tmp_path, "echo", "served")
    store = tmp_path / "data" / "model_store"
    assert done.returncode == 0, done.stderr
    assert done.stdout == "served\n"
    assert sorted(p.name for p in store.iterdir()) == ["mnist-cnn"]
    assert files(store / "mnist-cnn") == files(BUNDLED / "mnist-cnn")
    assert (tmp_path / "data" / "state").is_dir()
    assert "copied the bundled model mnist-cnn" in done.stderr


@pytest.mark.parametrize("own", ["mnist-cnn", "my-model", "notes.txt"])
def test_a_store_with_anything_of_the_users_is_left_as_it_is(tmp_path, own):
    store = tmp_path / "data" / "model_store"
    store.mkdir(parents=True)
    if own.endswith(".txt"):
        (store / own).write_text("mine")
    else:
        (store / own).mkdir()
        (store / own / "model.keras").write_bytes(b"the user's own model")
    before = files(store)
    done = entrypoint(tmp_path, "true")
    assert done.returncode == 0, done.stderr
    assert files(store) == before
    assert sorted(p.name for p in store.iterdir()) == [own]


def test_hidden_leftovers_do_not_count_as_models(tmp_path):
    store = tmp_path / "data" / "model_store"
    (store / ".tmp-quick-1234abcd").mkdir(parents=True)
    done = entrypoint(tmp_path, "true")
    assert done.returncode == 0, done.stderr
    assert (store / "mnist-cnn" / "model.keras").is_file()
    assert not [p for p in store.iterdir() if p.name.startswith(".tmp-bundled")]


def test_a_store_it_cannot_use_stops_it_with_what_to_do(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "model_store").write_text("not a folder")
    done = entrypoint(tmp_path, "echo", "served")
    assert done.returncode == 1
    assert done.stdout == ""
    assert "is not a folder that uid" in done.stderr and "chown" in done.stderr


def test_the_debian_mirror_is_read_from_apts_sources(tmp_path):
    listed = tmp_path / "sources.list.d"
    listed.mkdir()
    (listed / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
        "Types: deb-src deb\n# a comment\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n"
    )
    assert image_check.apt_mirror(tmp_path) == "http://mirror.example/debian"
    (tmp_path / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://vendor.example/apt nodistro main\n"
        "deb http://oneline.example/debian bookworm main\n"
    )
    assert image_check.apt_mirror(tmp_path) == "http://oneline.example/debian"


def test_no_debian_mirror_says_how_to_give_one(tmp_path):
    with pytest.raises(image_check.SmokeFailure, match="DEBIAN_MIRROR"):
        image_check.apt_mirror(tmp_path)
