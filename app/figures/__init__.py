"""Figure builders: arrays in, Plotly figure dicts out; no Dash, no callback context.

- :mod:`~app.figures.grids`: a layer's activation grid (separators, unit labels, colour codes, hover data);
- :mod:`~app.figures.charts`: input images, class probabilities, notes, and what every figure shares (margins,
  titles, colour scales);
- :mod:`~app.figures.codec`: the typed-array encoding of arrays inside figure dicts;
- :mod:`~app.figures.comparison`: differences, confusion matrix, unit rankings;
- :mod:`~app.figures.training`: the training page's curves;
- :mod:`~app.figures.features`: optimal inputs, first-layer kernels, attribution maps.
"""
