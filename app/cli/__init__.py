"""The terminal's face of the app: ``python -m app.cli`` trains a model (:mod:`app.cli.training`)."""
