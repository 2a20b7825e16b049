"""``python -m app``: serve the dashboard with Dash's development server on HOST:PORT (default 127.0.0.1:8050)."""

from app.context import of_server
from app.main import app


def main() -> None:
    """Run the development server (use gunicorn for production, see README)."""
    context = of_server(app.server)
    settings = context.settings
    context.open_default_model_in_background()  # the server answers meanwhile; /healthz says when it is done
    app.run(host=settings.host, port=settings.port, debug=False)


if __name__ == "__main__":
    main()
