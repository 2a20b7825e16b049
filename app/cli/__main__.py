"""``python -m app.cli``: see :mod:`app.cli.training`."""

from app.cli.training import main

if __name__ == "__main__":
    raise SystemExit(main())
