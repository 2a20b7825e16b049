"""The users file: werkzeug hashes only, roles checked, errors that name the line but never show it."""

from __future__ import annotations

import os
import stat

import pytest
from werkzeug.security import generate_password_hash

from app.auth.accounts import Account, AccountsError, parse_accounts, parse_line, read_accounts, write_text

FAST = "pbkdf2:sha256:1000"  # tests only: werkzeug's default (scrypt) costs ~0.2 s a hash
ALICE_HASH = generate_password_hash("wonderland", FAST)


def test_lines_with_werkzeug_hashes_comments_and_blanks():
    scrypt = generate_password_hash("x")  # werkzeug's default method
    text = f"# who may log in\n\nalice:{ALICE_HASH}:editor\n  bob.b@x-y:{scrypt}:viewer  \n"

    accounts = parse_accounts(text)

    assert [(a.name, a.role) for a in accounts] == [("alice", "editor"), ("bob.b@x-y", "viewer")]
    assert accounts[0].password_hash == ALICE_HASH and accounts[1].password_hash == scrypt
    assert ALICE_HASH not in repr(accounts[0])  # a logged account shows no hash
    assert parse_line(accounts[0].line()) == accounts[0]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("alice:wonderland:editor", "not a werkzeug password hash"),  # plain text is refused
        ("alice:wonderland", "expected name:hash:role"),
        ("wonderland", "expected name:hash:role"),
        (f"alice:{ALICE_HASH}:admin", "the role must be one of viewer, editor"),
        (f"alice:editor:{ALICE_HASH.split('$')[-1]}", "the role must be one of"),  # fields swapped
        (f"al ice:{ALICE_HASH}:editor", "a user name is"),
        (f":{ALICE_HASH}:editor", "a user name is"),
        ("alice:md5$salt$abcdef0123456789abcdef:editor", "not a werkzeug password hash"),
    ],
    # named by what is wrong: a hash is salted afresh in every process, and test names must be the same in each
    ids=["plain password", "two fields", "one field", "unknown role", "fields swapped", "space in name", "no name",
         "unknown hash method"],
)
def test_bad_lines_are_named_by_number_and_never_shown(line, message):
    with pytest.raises(AccountsError) as refused:
        parse_accounts(f"# users\n{line}\n")

    text = str(refused.value)
    assert text.startswith("line 2: ") and message in text
    for secret in ("wonderland", ALICE_HASH.split("$")[-1], "admin"):
        assert secret not in text


def test_a_name_twice_is_refused():
    with pytest.raises(AccountsError, match="line 2: user 'alice' appears twice"):
        parse_accounts(f"alice:{ALICE_HASH}:editor\nalice:{ALICE_HASH}:viewer")


def test_missing_binary_and_huge_files_are_refused_clearly(tmp_path):
    with pytest.raises(AccountsError, match="does not exist; create it with `python -m app.auth.users add NAME`"):
        read_accounts(tmp_path / "absent")
    (tmp_path / "binary").write_bytes(b"\xff\xfe" * 10)
    with pytest.raises(AccountsError, match="not UTF-8"):
        read_accounts(tmp_path / "binary")
    (tmp_path / "huge").write_bytes(b"#" * 2_000_000)
    with pytest.raises(AccountsError, match="not a users file"):
        read_accounts(tmp_path / "huge")


def test_writes_are_atomic_and_private(tmp_path):
    path = tmp_path / "users"
    path.write_text("old\n")
    os.chmod(path, 0o644)

    write_text(path, Account("alice", "editor", ALICE_HASH).line() + "\n")

    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_accounts(path)[0].name == "alice"
    assert [p.name for p in tmp_path.iterdir()] == ["users"]  # no temporary file left behind


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "users"
    path.write_text("# old\n")

    def full_disk(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError):
        write_text(path, "# new\n")

    assert path.read_text() == "# old\n" and [p.name for p in tmp_path.iterdir()] == ["users"]
