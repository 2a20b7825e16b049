"""Settings from the environment fail early with a clear message."""

import pytest
from werkzeug.security import generate_password_hash

from app.config import Settings, SettingsError, is_loopback


def test_defaults():
    settings = Settings.from_env({})
    assert settings.port == 8050 and settings.host == "127.0.0.1" and settings.model_store.name == "model_store"
    assert settings.auth_users == {} and settings.redis_url == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [({"PORT": "http"}, "PORT must be an integer"), ({"PORT": "70000"}, "PORT must be between"),
     ({"AUTH_USERS": "alice"}, "AUTH_USERS must look like"),
     ({"MODEL_ACTIVATION_MB": "0"}, "MODEL_ACTIVATION_MB must be between"),
     ({"MODEL_GFLOPS": "1e3"}, "MODEL_GFLOPS must be an integer"),
     ({"GRADIENT_MEMORY_MB": "-5"}, "GRADIENT_MEMORY_MB must be between"),
     ({"GRADIENT_GFLOPS": "0"}, "GRADIENT_GFLOPS must be between")],
)
def test_bad_values(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_users_and_paths(tmp_path):
    settings = Settings.from_env({"AUTH_USERS": "alice:a1, bob:b2", "MODEL_STORE": str(tmp_path), "PORT": "9000"})
    assert settings.auth_users == {"alice": "a1", "bob": "b2"}
    assert settings.model_store == tmp_path and settings.port == 9000


def test_dataset_locations_come_from_settings(tmp_path):
    settings = Settings.from_env({"KERAS_HOME": str(tmp_path / "keras"), "FASHION_MNIST_DIR": str(tmp_path / "f")})
    assert settings.data_sources.keras_home == tmp_path / "keras"
    assert settings.data_sources.fashion_mnist_dir == tmp_path / "f"
    assert Settings.from_env({}).data_sources.fashion_mnist_dir.name == "fashion-mnist"


def test_users_file_read_only_and_login_required(tmp_path):
    users = tmp_path / "users"
    users.write_text(f"alice:{generate_password_hash('x', 'pbkdf2:sha256:1000')}:viewer\n")
    settings = Settings.from_env({"AUTH_USERS_FILE": str(users), "READ_ONLY": "1"})
    assert [(a.name, a.role) for a in settings.accounts] == [("alice", "viewer")]
    assert settings.read_only and settings.login_required and settings.auth_users_file == users
    assert not Settings.from_env({}).login_required and not Settings.from_env({"READ_ONLY": "no"}).read_only
    assert Settings.from_env({"AUTH_USERS": "bob:b"}).login_required


@pytest.mark.parametrize(
    ("line", "message"),
    [("alice:supersecret:editor", "AUTH_USERS_FILE: line 1: the password of 'alice' is not a werkzeug password hash"),
     ("alice:scrypt:32768:8:1$salt$00112233445566778899:root", "AUTH_USERS_FILE: line 1: the role must be one of")],
)
def test_a_bad_users_file_stops_the_start_without_showing_secrets(tmp_path, line, message):
    users = tmp_path / "users"
    users.write_text(line + "\n")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"AUTH_USERS_FILE": str(users)})
    assert message in str(refused.value)
    assert "supersecret" not in str(refused.value) and "00112233" not in str(refused.value)


def test_settings_errors_and_repr_never_show_passwords(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        Settings.from_env({"AUTH_USERS_FILE": str(tmp_path / "absent")})
    with pytest.raises(SettingsError, match="READ_ONLY must be 1 or 0"):
        Settings.from_env({"READ_ONLY": "maybe"})
    for env in ({"AUTH_USERS": "alice:pw1,secretpassword"}, {"AUTH_USERS": "al ice:secretpassword"},
                {"AUTH_USERS": "alice:a,alice:secretpassword"}):
        with pytest.raises(SettingsError) as refused:
            Settings.from_env(env)
        assert "secretpassword" not in str(refused.value)
    assert "secretpassword" not in repr(Settings.from_env({"AUTH_USERS": "alice:secretpassword"}))


def test_a_user_in_both_auth_users_and_the_file_is_refused(tmp_path):
    users = tmp_path / "users"
    users.write_text(f"alice:{generate_password_hash('x', 'pbkdf2:sha256:1000')}:viewer\n")
    with pytest.raises(SettingsError, match="'alice' is in both AUTH_USERS and AUTH_USERS_FILE"):
        Settings.from_env({"AUTH_USERS_FILE": str(users), "AUTH_USERS": "alice:other"})


def test_model_limits_come_from_settings():
    limits = Settings.from_env({}).model_limits
    assert (limits.max_file_bytes, limits.max_activation_bytes, limits.max_flops) == (200 * 10**6, 400 * 10**6,
                                                                                      50 * 10**9)
    assert (limits.gradient_memory_bytes, limits.gradient_flops) == (1600 * 10**6, 2000 * 10**9)
    limits = Settings.from_env({"MAX_UPLOAD_BYTES": "50000000", "MODEL_ACTIVATION_MB": "100", "MODEL_GFLOPS": "5",
                                "GRADIENT_MEMORY_MB": "300", "GRADIENT_GFLOPS": "20"}).model_limits
    assert (limits.max_file_bytes, limits.max_activation_bytes, limits.max_flops) == (50 * 10**6, 100 * 10**6,
                                                                                      5 * 10**9)
    assert (limits.gradient_memory_bytes, limits.gradient_flops) == (300 * 10**6, 20 * 10**9)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]"])
def test_loopback_hosts_reach_this_machine_only(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "10.1.2.3", "192.168.0.7", "fe80::1", "explorer.example.org",
                                  "localhost.example.org"])
def test_other_hosts_may_face_a_network(host):
    assert not is_loopback(host)


def test_allow_anonymous_writes_is_off_unless_set_and_checked_like_the_other_switches():
    assert not Settings.from_env({}).allow_anonymous_writes
    assert Settings.from_env({"ALLOW_ANONYMOUS_WRITES": "1"}).allow_anonymous_writes
    assert not Settings.from_env({"ALLOW_ANONYMOUS_WRITES": "off"}).allow_anonymous_writes
    with pytest.raises(SettingsError, match="ALLOW_ANONYMOUS_WRITES must be 1 or 0"):
        Settings.from_env({"ALLOW_ANONYMOUS_WRITES": "please"})


LOGINS = {"no login": {}, "AUTH_USERS": {"AUTH_USERS": "alice:secret"}, "users file": "file"}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "0.0.0.0", "10.1.2.3"])
@pytest.mark.parametrize("login", LOGINS)
@pytest.mark.parametrize("opted_in", [False, True])
def test_writes_are_refused_only_beyond_loopback_without_a_login_or_an_opt_in(host, login, opted_in, tmp_path):
    env = {"HOST": host, "ALLOW_ANONYMOUS_WRITES": "1" if opted_in else "0"}
    if LOGINS[login] == "file":
        users = tmp_path / "users"
        users.write_text(f"alice:{generate_password_hash('x', 'pbkdf2:sha256:1000')}:editor\n")
        env["AUTH_USERS_FILE"] = str(users)
    else:
        env.update(LOGINS[login])
    refused = Settings.from_env(env).anonymous_writes_refused
    assert refused == (host in ("0.0.0.0", "10.1.2.3") and login == "no login" and not opted_in)
