"""The Dash shell: pages, navigation bar, JSON API blueprint and optional login. ``server`` is the WSGI app."""

from __future__ import annotations

import logging
from pathlib import Path

import dash
import dash_auth
import dash_bootstrap_components as dbc
from dash import html

from app import services
from app.api import api

APP_DIR = Path(__file__).resolve().parent
ASSETS_DIR = APP_DIR.parent / "assets"
TITLE = "CNN Activation Explorer"


def _navbar() -> dbc.Navbar:
    ordered = sorted(
        (page for page in dash.page_registry.values() if page.get("nav_order") is not None),
        key=lambda page: page["nav_order"],
    )
    links = [dbc.NavItem(dbc.NavLink(page["name"], href=page["relative_path"], active="exact")) for page in ordered]
    return dbc.Navbar(
        dbc.Container(
            [
                dbc.NavbarBrand(TITLE, href="/"),
                dbc.Nav(links, navbar=True),
                html.A("API", href="/api/models", className="nav-link text-light small", target="_blank"),
            ],
            fluid=True,
        ),
        color="dark",
        dark=True,
        className="mb-3",
    )


def create_app() -> dash.Dash:
    """Build the Dash app from the environment's settings (see :mod:`app.config`)."""
    settings = services.settings()
    app = dash.Dash(
        # The package name makes Dash import pages as app.pages.<name>, the same modules tests and code import.
        "app",
        use_pages=True,
        pages_folder=str(APP_DIR / "pages"),
        assets_folder=str(ASSETS_DIR),
        title=TITLE,
        suppress_callback_exceptions=True,
        update_title=None,
    )
    app.layout = html.Div([_navbar(), dbc.Container(dash.page_container, fluid=True)])
    app.server.register_blueprint(api)
    if settings.auth_users:
        dash_auth.BasicAuth(app, settings.auth_users, public_routes=["/healthz"])
    return app


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
app = create_app()
server = app.server
