"""The login's parts without a server: reading the Authorization header, the user table, callback output keys."""

from __future__ import annotations

import base64
import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash

from app.auth import gate as auth
from app.auth.accounts import Account
from app.auth.gate import User, UserTable, basic_credentials, callback_output_ids
from app.config import Settings

FAST = "pbkdf2:sha256:1000"


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


# the six malformed headers of issue 10 (each a 500 under dash-auth 2.3.0), and more of their kind
MALFORMED = {
    "bearer": "Bearer x",
    "not base64": "Basic !!!",
    "no colon": basic(b"alicewonderland"),
    "not UTF-8": basic(b"\xff\xfe:\xfa"),
    "lowercase basic": "basic " + base64.b64encode(b"alice:wonderland").decode(),
    "no credentials": "Basic",
    "empty token": "Basic ",
    "padding missing": "Basic " + base64.b64encode(b"alice:wonderland").decode().rstrip("="),
    "trailing garbage": basic(b"alice:wonderland") + "$",
    "two spaces": "Basic  " + base64.b64encode(b"alice:wonderland").decode(),
    "empty name": basic(b":wonderland"),
    "non-ASCII token": "Basic ÿÿÿÿ",
    "huge": basic(b"alice:" + b"x" * 10_000),
}


@pytest.mark.parametrize("header", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_headers_give_no_credentials(header):
    assert basic_credentials(header) is None


def test_well_formed_headers_give_name_and_password():
    assert basic_credentials(basic(b"alice:wonder:land")) == ("alice", "wonder:land")
    assert basic_credentials(basic("zoë:pässword".encode())) == ("zoë", "pässword")
    assert basic_credentials(basic(b"alice:")) == ("alice", "")
    assert basic_credentials(None) is None and basic_credentials("") is None


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(basic),
                 st.text(max_size=100).map(lambda text: "Basic " + text)))
def test_no_header_makes_the_reader_raise(header):
    result = basic_credentials(header)
    assert result is None or (isinstance(result, tuple) and result[0])


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "users"
    accounts = [Account("alice", "editor", generate_password_hash("wonderland", FAST)),
                Account("bob", "viewer", generate_password_hash("builder1", FAST))]
    path.write_text("".join(account.line() + "\n" for account in accounts))
    return UserTable(accounts, {"carol": "quickstart"}, path)


def test_users_of_the_file_and_of_auth_users_log_in_with_their_role(table):
    assert table.check("alice", "wonderland") == User("alice", "editor")
    assert table.check("bob", "builder1") == User("bob", "viewer")
    assert table.check("carol", "quickstart") == User("carol", "editor")  # AUTH_USERS: all editors
    assert table.check("alice", "builder1") is None and table.check("bob", "") is None
    assert table.check("mallory", "wonderland") is None and table.check("Alice", "wonderland") is None


def test_unknown_names_cost_one_hash_check_like_known_ones(table, monkeypatch):
    """Timing must not tell which names exist: an unknown name is checked against a dummy hash of the same
    method, exactly once, like a known name with a wrong password."""
    checked = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda hashed, password: checked.append(hashed) or
                        real(hashed, password))

    table.check("alice", "wrong")
    table.check("nobody", "wrong")

    assert len(checked) == 2 and all(hashed.startswith(FAST + "$") for hashed in checked)
    assert checked[0] != checked[1]


def test_each_outcome_is_checked_once_then_remembered(table, monkeypatch):
    calls = []
    real = auth.check_password_hash
    monkeypatch.setattr(auth, "check_password_hash", lambda hashed, password: calls.append(1) or
                        real(hashed, password))

    for _ in range(5):
        assert table.check("alice", "wonderland") == User("alice", "editor")
        assert table.check("alice", "wrong") is None

    assert len(calls) == 2


def test_the_file_is_reloaded_when_it_changes(table, tmp_path):
    path = tmp_path / "users"
    assert table.check("bob", "builder1") == User("bob", "viewer")
    dave = Account("dave", "editor", generate_password_hash("d4v3d4v3", FAST))
    path.write_text(path.read_text().replace("bob:", "# bob:") + dave.line() + "\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime even on a coarse clock

    assert table.check("bob", "builder1") is None  # removed: the remembered success is gone too
    assert table.check("dave", "d4v3d4v3") == User("dave", "editor")
    assert table.names() == ["alice", "dave", "carol"]


def test_a_broken_reload_locks_the_file_users_out_and_says_so_without_secrets(table, tmp_path, caplog):
    path = tmp_path / "users"
    path.write_text(path.read_text() + "eve:plaintextpassword:editor\n")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))

    assert table.check("alice", "wonderland") is None
    assert table.check("carol", "quickstart") == User("carol", "editor")  # AUTH_USERS stays
    assert "could not be reloaded" in caplog.text and "line 3" in caplog.text
    assert "plaintextpassword" not in caplog.text and "$" not in caplog.text


def test_a_hash_werkzeug_cannot_use_refuses_the_login_instead_of_raising(tmp_path, caplog):
    table = UserTable([Account("alice", "editor", "pbkdf2:nohash:1000$salt$00112233445566778899")], {})
    assert table.check("alice", "wonderland") is None
    assert "cannot be checked" in caplog.text and "00112233" not in caplog.text


@pytest.mark.parametrize(
    ("key", "ids"),
    [
        ("train-form-message.children", {"train-form-message"}),
        ("train-form-message.children@db1e1d830305a270061396d8", {"train-form-message"}),
        ("..train-form-message.children...train-pin.data..", {"train-form-message", "train-pin"}),
        ("..a.b...c.d@ff...e.f..", {"a", "c", "e"}),
        ("my\\.dotted\\.id.value", {"my.dotted.id"}),
        ('{"index":1,"type":"x"}.children', {'{"index":1,"type":"x"}'}),
    ],
)
def test_callback_output_ids(key, ids):
    assert callback_output_ids(key) == ids


EDITOR_ALICE, VIEWER_BOB = User("alice", "editor"), User("bob", "viewer")


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("opted_in", [False, True])
def test_without_a_login_anyone_writes_on_loopback_or_when_opted_in_else_nobody(host, opted_in):
    settings = Settings.from_env({"HOST": host, "ALLOW_ANONYMOUS_WRITES": str(int(opted_in))})
    refused = auth.refusal(None, settings)
    if host == "0.0.0.0" and not opted_in:
        assert refused == auth.ANONYMOUS_WRITES_OFF
        assert refused.startswith("Writes are off") and "ALLOW_ANONYMOUS_WRITES=1" in refused
    else:
        assert refused is None


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
@pytest.mark.parametrize("opted_in", [False, True])
def test_with_a_login_the_role_decides_wherever_the_instance_is_served(host, opted_in):
    settings = Settings.from_env({"HOST": host, "AUTH_USERS": "alice:secret",
                                  "ALLOW_ANONYMOUS_WRITES": str(int(opted_in))})
    assert auth.refusal(EDITOR_ALICE, settings) is None
    assert "needs an editor" in auth.refusal(VIEWER_BOB, settings)


def test_read_only_says_so_before_the_open_network_does():
    settings = Settings.from_env({"HOST": "0.0.0.0", "READ_ONLY": "1", "ALLOW_ANONYMOUS_WRITES": "1"})
    assert "read-only" in auth.refusal(None, settings)
    assert "read-only" in auth.refusal(None, Settings.from_env({"HOST": "0.0.0.0", "READ_ONLY": "1"}))
