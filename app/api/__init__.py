"""The JSON API: a Flask blueprint on the Dash server, over the same core as the pages.

Importing this package registers every route module on :data:`api`; every failure becomes a 4xx JSON
``{"error": message}`` (see :mod:`app.api.blueprint`).
"""

from app.api import classes, explorer, features, finder, inputs, jobs, models, units
from app.api.blueprint import api

__all__ = ["api", "classes", "explorer", "features", "finder", "inputs", "jobs", "models", "units"]
