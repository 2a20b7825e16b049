"""The context of the app the tests serve (``app.main.server``), and a fresh one after a test changes the
environment."""

from __future__ import annotations

import sys

from app.context import AppContext, install, of_server


def refresh_context() -> None:
    """Give the app, if it is built, a new context from the environment: what a restarted process would serve
    with. (An app built later reads the environment then.)"""
    main = sys.modules.get("app.main")
    if main is not None:
        install(main.server, AppContext.from_env())


def served_context() -> AppContext:
    """The context ``app.main.server`` serves with (building the app on first use)."""
    from app.main import server

    return of_server(server)
