"""Figure builders of the training page: per-epoch records in, Plotly figures out (the blog's EpochPlot and
LrHistory plots, redrawn after every epoch). No Dash, no callback context.

Plain dicts, like :mod:`app.figures.charts`: building them costs well under a millisecond, where ``make_subplots`` and
``go.Figure`` validation cost ~40 ms per redraw, on the path that carries an epoch to every open page.
"""

from __future__ import annotations

import math

from app.core.training import epoch_position, is_partial
from app.figures.charts import MARGIN, MODEBAR_PX, TITLE_FONT_PX, TITLE_PAD_PX, chart_title, title_height

TRAIN_COLOR = "#1f77b4"
VALIDATION_COLOR = "#ff7f0e"
GRID_COLOR = "#eee"
EMPTY_NOTE = "curves appear after the first epoch"


# Below the plot: tick labels, the "epoch" title, and the legend under them (placed from the graph's bottom edge,
# so a short graph cannot push it onto the axis title).
BOTTOM_PX = 80


def _epoch_axis(epochs: list, epochs_total: int, domain: list[float] | None = None, anchor: str | None = None) -> dict:
    """An x axis of epochs, hidden until the first epoch (no made-up range such as -1 to 6 before there is data)."""
    axis = {"title": {"text": "epoch", "standoff": 6}, "gridcolor": GRID_COLOR, "zeroline": False,
            "visible": bool(epochs)}
    last = max([epochs_total, *(row["epoch"] for row in epochs)], default=1)
    axis["range"] = [0.5, max(last, 1) + 0.5]  # fixed, so the curves visibly grow into the run
    if 0 < last <= 20:
        axis["dtick"] = 1  # whole epochs only
    if domain:
        axis["domain"] = domain
    if anchor:
        axis["anchor"] = anchor
    return axis


def _note(show: bool) -> list[dict]:
    """Before the first epoch: a note instead of empty axes with made-up ranges."""
    if not show:
        return []
    return [{"text": EMPTY_NOTE, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
             "font": {"color": "#888"}}]


def _partial_trace(epochs: list[dict], key: str, color: str, axes: tuple[str, str], number_format: str) -> list[dict]:
    """The epoch a stop cut short, if any: a dotted segment from the last full epoch to a hollow marker placed at
    the point reached in that epoch, "partial" in its hover; no legend entry (it continues the metric's curve)."""
    cut = next((row for row in epochs if is_partial(row)), None)
    if cut is None:
        return []
    full = [row for row in epochs if not is_partial(row)]
    rows = full[-1:] + [cut]
    labels = [f"epoch {row['epoch']}" for row in full[-1:]] + [
        f"epoch {cut['epoch']}, partial: {cut.get('batches', '?')} of {cut.get('batches_per_epoch', '?')} batches"]
    return [{
        "type": "scatter",
        "x": [epoch_position(row) for row in rows],
        "y": [row.get(key) for row in rows],
        "text": labels,
        "name": f"{key} (partial epoch)",
        "showlegend": False,
        "mode": "lines+markers",
        "line": {"color": color, "dash": "dot"},
        # the last full epoch's point is drawn by the main curve already
        "marker": {"symbol": ["circle"] * (len(rows) - 1) + ["circle-open"], "size": [0] * (len(rows) - 1) + [10],
                   "color": color, "line": {"width": 2, "color": color}},
        "xaxis": axes[0],
        "yaxis": axes[1],
        "hovertemplate": f"%{{text}}<br>{key} %{{y:{number_format}}}<extra></extra>",
    }]


def training_curves(epochs: list[dict[str, float]], epochs_total: int = 0, title: str = "") -> dict:
    """Loss and val_loss (left), accuracy and val_accuracy (right) per epoch: four traces, x = epoch.

    Args:
        epochs: per-epoch metrics rows as the job store returns them (``epoch``, ``loss``, ``val_loss``, ...).
        epochs_total: the run's length, to fix the x axes so the curves visibly grow into it.
        title: figure title.

    Returns:
        A Plotly figure dict; ``data`` holds loss, val_loss (axes x/y) and accuracy, val_accuracy (x2/y2) over the
        full epochs, then, if a stop cut an epoch short, one dotted "(partial epoch)" trace per metric, in that order.
    """
    full = [row for row in epochs if not is_partial(row)]
    x = [row["epoch"] for row in full]
    data, partial = [], []
    for axes, metric in ((("x", "y"), "loss"), (("x2", "y2"), "accuracy")):
        for prefix, color, dash in (("", TRAIN_COLOR, "solid"), ("val_", VALIDATION_COLOR, "dash")):
            key = prefix + metric
            partial += _partial_trace(epochs, key, color, axes, ".4f")
            data.append({
                "type": "scatter",
                "x": x,
                "y": [row.get(key) for row in full],
                "name": key,
                "mode": "lines+markers",
                "line": {"color": color, "dash": dash},
                "xaxis": axes[0],
                "yaxis": axes[1],
                "hovertemplate": f"epoch %{{x}}<br>{key} %{{y:.4f}}<extra></extra>",
            })
    subplot_titles = [
        {"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": x_, "y": 1.0,
         "xanchor": "center", "yanchor": "bottom", "font": {"size": TITLE_FONT_PX}}
        for text, x_ in (("loss", 0.22), ("accuracy", 0.78))
    ]
    subplot_height = title_height("loss")
    main_title = chart_title(title)
    main_title["pad"] = {"b": TITLE_PAD_PX + subplot_height}  # above the subplot titles
    layout = {
        "title": main_title,
        "margin": {**MARGIN, "l": 50, "t": MODEBAR_PX + subplot_height + title_height(title), "b": BOTTOM_PX},
        "legend": {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0.5,
                   "xanchor": "center"},
        "showlegend": bool(epochs),
        "plot_bgcolor": "white",
        "uirevision": "curves",
        "xaxis": _epoch_axis(epochs, epochs_total, [0.0, 0.42], "y"),
        "xaxis2": _epoch_axis(epochs, epochs_total, [0.58, 1.0], "y2"),
        "yaxis": {"gridcolor": GRID_COLOR, "anchor": "x", "visible": bool(epochs), "automargin": True},
        "yaxis2": {"gridcolor": GRID_COLOR, "anchor": "x2", "visible": bool(epochs), "automargin": True},
        "annotations": subplot_titles + _note(not epochs),
    }
    return {"data": data + partial, "layout": layout}


def rate_axis_range(rates: list) -> list[float] | None:
    """The learning-rate chart's y range when the rate stays the same, else None (Plotly's own range, which spans
    rates that change).

    A constant rate (every run without a schedule) is one value, for which Plotly would draw a -1…1 axis where
    0.001 sits on what reads as 0: the range is then half the rate either side of it (0.0005…0.0015).
    """
    finite = [float(rate) for rate in rates if isinstance(rate, int | float) and math.isfinite(rate)]
    if not finite:
        return None
    low, high = min(finite), max(finite)
    middle = (low + high) / 2
    # float32 rounding may set a constant rate's records apart by ~1e-7 of it: still one value to the reader
    if middle == 0 or high - low > 1e-3 * abs(middle):
        return None
    return [middle - abs(middle) / 2, middle + abs(middle) / 2]


def learning_rate_curve(epochs: list[dict[str, float]], epochs_total: int = 0) -> dict:
    """The learning rate at the end of each full epoch (the blog's LrHistory) as a Plotly figure dict; an epoch cut
    short by a stop is a second, dotted trace ending in a hollow marker. A rate that stays the same is drawn on an
    axis around it (:func:`rate_axis_range`)."""
    full = [row for row in epochs if not is_partial(row)]
    trace = {
        "type": "scatter",
        "x": [row["epoch"] for row in full],
        "y": [row.get("learning_rate") for row in full],
        "mode": "lines+markers",
        "name": "learning rate",
        "line": {"color": "#2ca02c"},
        "hovertemplate": "epoch %{x}<br>learning rate %{y:.3e}<extra></extra>",
    }
    title = "learning rate"
    layout = {
        "title": chart_title(title),
        "margin": {**MARGIN, "l": 60, "t": MODEBAR_PX + title_height(title), "b": 50},
        "plot_bgcolor": "white",
        "uirevision": "lr",
        "xaxis": _epoch_axis(epochs, epochs_total),
        "yaxis": {"exponentformat": "e", "gridcolor": GRID_COLOR, "visible": bool(epochs), "automargin": True},
        "annotations": _note(not epochs),
    }
    steady = rate_axis_range([row.get("learning_rate") for row in epochs])
    # said either way: a redraw after a schedule changed the rate must drop the range the constant rate had
    layout["yaxis"].update({"range": steady, "autorange": False} if steady else {"autorange": True})
    return {"data": [trace, *_partial_trace(epochs, "learning_rate", "#2ca02c", ("x", "y"), ".3e")],
            "layout": layout}
