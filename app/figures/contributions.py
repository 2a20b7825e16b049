"""The MLP view's charts: each node's activation × weight to the logit of class A and of class B, on one diverging
scale, and A − B. Plain figure dicts; no Dash."""

from __future__ import annotations

from app.core.contributions import Contributions
from app.core.grid import tile
from app.figures.charts import fitted_title, note_figure
from app.figures.comparison import difference_heatmap, symmetric_range
from app.figures.grids import activation_heatmap


def contribution_figures(result: Contributions, names: tuple[str, str]) -> tuple[dict, dict, dict]:
    """The grids of contributions to A and to B (one colour scale centred on 0: red pushes the logit up, blue
    down) and their difference A − B (red: the node speaks for A rather than B).

    Args:
        result: the contributions of one image.
        names: how the titles name the two classes (``class 4``, or ``unit 3 of Dense_2`` for a hidden layer).
    """
    grids = [tile(part) for part in result.contributions]
    zrange = symmetric_range([grid for grid, _ in grids])
    a_figure, b_figure = (
        activation_heatmap(grid, grid_layout, "rdbu", reverse=True, zrange=zrange, zmid=0.0,
                           title=fitted_title(f"contributions to {name}"), value_name="contribution")
        for (grid, grid_layout), name in zip(grids, names, strict=True)
    )
    if result.classes[0] == result.classes[1]:
        difference = note_figure(f"Class A and class B are both {names[0]}: the difference is zero everywhere. "
                                 "Choose two different classes.")
    else:
        difference = difference_heatmap(result.difference, fitted_title(f"{names[0]} − {names[1]}"))
    return a_figure, b_figure, difference
