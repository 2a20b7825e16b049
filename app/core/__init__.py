"""Computation with no Dash imports: model store, activations, grids, statistics, datasets, training."""
