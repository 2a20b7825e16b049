"""The TensorFlow functions the server traces (the activation probe, attribution, optimal inputs) parse no Python
source: autograph would, with Python's ast, which CPython 3.11.7 does not guard between threads, and these traces
run in request, prefetch and job threads side by side."""

from __future__ import annotations

import ast

import numpy as np

from app.core.activations import compiled
from app.core.attribution import GradientModels
from app.core.features import optimise_units


def test_tracing_the_served_functions_parses_no_python_source(tiny_loaded, monkeypatch):
    parsed = []
    parse = ast.parse

    def counting_parse(*args, **kwargs):
        parsed.append(args[0][:80] if args and isinstance(args[0], str) else args)
        return parse(*args, **kwargs)

    monkeypatch.setattr(ast, "parse", counting_parse)
    images = tiny_loaded.images[:2].astype(np.float32)
    layer = "conv"  # the tiny model's convolution
    models = GradientModels(tiny_loaded.engine)

    compiled(tiny_loaded.model)(images)
    xla = compiled(tiny_loaded.model, one_image=True)
    xla(images[:1])
    models.input_gradient()(images, np.int32(1))
    models.cam(layer)(images[:1], np.int32(1))
    optimise_units(models, layer, np.array([0, 1]))
    assert parsed == [] and xla.runs_xla
