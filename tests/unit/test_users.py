"""``python -m app.auth.users``: passwords only through getpass, hashes never shown, the file private and atomic."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
from werkzeug.security import check_password_hash

from app.auth.accounts import read_accounts
from app.auth.users import main
from app.config import PROJECT_ROOT


def typed(*answers):
    """A getpass stand-in that answers in turn and records the prompts."""
    prompts = []

    def prompt(text):
        prompts.append(text)
        return answers[len(prompts) - 1]

    prompt.prompts = prompts
    return prompt


def test_add_list_replace_remove(tmp_path, capsys):
    path = tmp_path / "users"
    prompt = typed("wonderland", "wonderland")

    assert main(["add", "alice", "--role", "editor", "--file", str(path)], prompt) == 0
    assert main(["--file", str(path), "add", "bob"], typed("builder12", "builder12")) == 0  # viewer by default

    assert prompt.prompts == ["Password for alice: ", "Password for alice again: "]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    alice, bob = read_accounts(path)
    assert (alice.name, alice.role, bob.name, bob.role) == ("alice", "editor", "bob", "viewer")
    assert check_password_hash(alice.password_hash, "wonderland") and "wonderland" not in path.read_text()

    capsys.readouterr()
    assert main(["list", "--file", str(path)]) == 0
    listed = capsys.readouterr().out
    assert listed == "alice\teditor\nbob\tviewer\n" and "$" not in listed

    path.write_text("# the team\n" + path.read_text())
    replace = ["add", "bob", "--role", "editor", "--replace", "--file", str(path)]
    assert main(replace, typed("newpass99", "newpass99")) == 0
    assert main(["remove", "alice", "--file", str(path)]) == 0
    (bob,) = read_accounts(path)
    assert bob.role == "editor" and check_password_hash(bob.password_hash, "newpass99")
    assert path.read_text().startswith("# the team\nbob:")  # comments and order kept


def test_the_file_defaults_to_auth_users_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AUTH_USERS_FILE", str(tmp_path / "users"))
    assert main(["add", "carol"], typed("password1", "password1")) == 0
    assert read_accounts(tmp_path / "users")[0].name == "carol"
    monkeypatch.delenv("AUTH_USERS_FILE")
    assert main(["list"]) == 2 and "give --file or set AUTH_USERS_FILE" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "answers", "message"),
    [
        (["add", "alice"], ("wonderland", "wonderlant"), "the passwords differ"),
        (["add", "alice"], ("short", "short"), "at least 8 characters"),
        (["add", "al ice"], (), "a user name is"),
        (["add", "bob"], ("password1", "password1"), "user 'bob' exists; use --replace"),
        (["remove", "nobody"], (), "no user 'nobody'"),
    ],
)
def test_refusals_change_nothing(tmp_path, capsys, argv, answers, message):
    path = tmp_path / "users"
    main(["add", "bob", "--file", str(path)], typed("builder12", "builder12"))
    before = path.read_text()

    assert main([*argv, "--file", str(path)], typed(*answers)) == 1

    assert message in capsys.readouterr().err and path.read_text() == before


def test_a_broken_file_is_not_edited_and_not_shown(tmp_path, capsys):
    path = tmp_path / "users"
    path.write_text("alice:plain-text-secret:editor\n")

    assert main(["add", "bob", "--file", str(path)], typed("password1", "password1")) == 2

    err = capsys.readouterr().err
    assert "line 1" in err and "plain-text-secret" not in err
    assert path.read_text() == "alice:plain-text-secret:editor\n"


def test_a_password_is_never_taken_from_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "app.auth.users", "add", "alice", "wonderland", "--file",
                             str(tmp_path / "users")], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 2 and "unrecognized arguments: wonderland" in result.stderr
    assert not (tmp_path / "users").exists()
