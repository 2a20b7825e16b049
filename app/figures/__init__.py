"""Figure builders: arrays in, Plotly figure dicts out; no Dash, no callback context.

- :mod:`~app.figures.heatmaps`: layer grids, input images, class probabilities, colour scales, typed arrays;
- :mod:`~app.figures.comparison`: differences, confusion matrix, unit rankings;
- :mod:`~app.figures.training`: the training page's curves.
"""
