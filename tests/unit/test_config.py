"""Settings from the environment fail early with a clear message."""

import pytest

from app.config import Settings, SettingsError


def test_defaults():
    settings = Settings.from_env({})
    assert settings.port == 8050 and settings.host == "127.0.0.1" and settings.model_store.name == "model_store"
    assert settings.auth_users == {} and settings.redis_url == ""


@pytest.mark.parametrize(
    ("env", "message"),
    [({"PORT": "http"}, "PORT must be an integer"), ({"PORT": "70000"}, "PORT must be between"),
     ({"AUTH_USERS": "alice"}, "AUTH_USERS must look like")],
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
