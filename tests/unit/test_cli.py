"""The terminal's training command: its options map onto the training configuration."""

from __future__ import annotations

import argparse

import pytest

from app.cli.training import build_parser, config_from_args


def test_cli_options_override_the_config_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"name": "from-file", "epochs": 7, "conv_layers": [{"filters": 4, "kernel": 5}]}')
    args = build_parser().parse_args(["--config", str(path), "--epochs", "2", "--filters", "8,16", "--dense", "",
                                      "--probe-image", "3"])
    raw = config_from_args(args)
    assert raw["name"] == "from-file" and raw["epochs"] == 2 and raw["probe_image"] == 3
    assert raw["conv_layers"] == [{"filters": 8, "kernel": 5, "activation": "relu"},
                                  {"filters": 16, "kernel": 3, "activation": "relu"}]
    assert raw["dense_layers"] == []
    assert config_from_args(build_parser().parse_args([])) == {}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--filters", "8,x"])
    assert isinstance(build_parser().parse_args([]), argparse.Namespace)
    own = "u:0123456789abcdef0123"
    assert config_from_args(build_parser().parse_args(["--probe-image", own]))["probe_image"] == own


def test_a_job_from_the_terminal_records_the_os_user(app_store, tmp_path, monkeypatch, capsys):
    import getpass

    from app.cli import training as cli
    from app.jobs.runner import EmbeddedRunner
    from tests.app_context import refresh_context, served_context

    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setattr(EmbeddedRunner, "_launch", lambda _runner, _job: None)  # queued, never trained
    refresh_context()

    assert cli.main(["--detach", "--name", "from-terminal", "--epochs", "1"]) == 0

    (job,) = served_context().job_store.list()
    assert job.started_by == getpass.getuser() and job.id in capsys.readouterr().out
    served_context().job_store.request_stop(job.id)

    def no_name():
        raise OSError("no user name for uid 12345")

    monkeypatch.setattr(getpass, "getuser", no_name)
    assert cli.os_user() is None
