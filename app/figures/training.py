"""Figure builders of the training page: per-epoch records in, Plotly figures out (the blog's EpochPlot and
LrHistory plots, redrawn after every epoch). No Dash, no callback context.

Plain dicts, like :mod:`app.figures.heatmaps`: building them costs well under a millisecond, where ``make_subplots`` and
``go.Figure`` validation cost ~40 ms per redraw, on the path that carries an epoch to every open page.
"""

from __future__ import annotations

from app.figures.heatmaps import MARGIN

TRAIN_COLOR = "#1f77b4"
VALIDATION_COLOR = "#ff7f0e"
GRID_COLOR = "#eee"
EMPTY_NOTE = "curves appear after the first epoch"


def _epoch_axis(epochs_total: int, domain: list[float] | None = None, anchor: str | None = None) -> dict:
    axis = {"title": {"text": "epoch"}, "gridcolor": GRID_COLOR, "zeroline": False}
    if epochs_total:
        axis["range"] = [0.5, epochs_total + 0.5]  # fixed, so the curves visibly grow into the run
    if 0 < epochs_total <= 20:
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


def training_curves(epochs: list[dict[str, float]], epochs_total: int = 0, title: str = "") -> dict:
    """Loss and val_loss (left), accuracy and val_accuracy (right) per epoch: four traces, x = epoch.

    Args:
        epochs: per-epoch metrics rows as the job store returns them (``epoch``, ``loss``, ``val_loss``, ...).
        epochs_total: the run's length, to fix the x axes so the curves visibly grow into it.
        title: figure title.

    Returns:
        A Plotly figure dict; ``data`` holds loss, val_loss (axes x/y) and accuracy, val_accuracy (x2/y2).
    """
    x = [row["epoch"] for row in epochs]
    data = []
    for axes, metric in ((("x", "y"), "loss"), (("x2", "y2"), "accuracy")):
        for prefix, color, dash in (("", TRAIN_COLOR, "solid"), ("val_", VALIDATION_COLOR, "dash")):
            key = prefix + metric
            data.append({
                "type": "scatter",
                "x": x,
                "y": [row.get(key) for row in epochs],
                "name": key,
                "mode": "lines+markers",
                "line": {"color": color, "dash": dash},
                "xaxis": axes[0],
                "yaxis": axes[1],
                "hovertemplate": f"epoch %{{x}}<br>{key} %{{y:.4f}}<extra></extra>",
            })
    subplot_titles = [
        {"text": text, "showarrow": False, "xref": "paper", "yref": "paper", "x": x_, "y": 1.0,
         "xanchor": "center", "yanchor": "bottom", "font": {"size": 13}}
        for text, x_ in (("loss", 0.22), ("accuracy", 0.78))
    ]
    layout = {
        "title": {"text": title, "font": {"size": 13}},
        "margin": {**MARGIN, "t": 50},
        "legend": {"orientation": "h", "y": -0.25},
        "plot_bgcolor": "white",
        "uirevision": "curves",
        "xaxis": _epoch_axis(epochs_total, [0.0, 0.44], "y"),
        "xaxis2": _epoch_axis(epochs_total, [0.56, 1.0], "y2"),
        "yaxis": {"gridcolor": GRID_COLOR, "anchor": "x", "visible": bool(epochs), "automargin": True},
        "yaxis2": {"gridcolor": GRID_COLOR, "anchor": "x2", "visible": bool(epochs), "automargin": True},
        "annotations": subplot_titles + _note(not epochs),
    }
    return {"data": data, "layout": layout}


def learning_rate_curve(epochs: list[dict[str, float]], epochs_total: int = 0) -> dict:
    """The learning rate at the end of each epoch (the blog's LrHistory), one trace, as a Plotly figure dict."""
    trace = {
        "type": "scatter",
        "x": [row["epoch"] for row in epochs],
        "y": [row.get("learning_rate") for row in epochs],
        "mode": "lines+markers",
        "name": "learning rate",
        "line": {"color": "#2ca02c"},
        "hovertemplate": "epoch %{x}<br>learning rate %{y:.3e}<extra></extra>",
    }
    layout = {
        "title": {"text": "learning rate", "font": {"size": 13}},
        "margin": {**MARGIN, "t": 40},
        "plot_bgcolor": "white",
        "uirevision": "lr",
        "xaxis": _epoch_axis(epochs_total),
        "yaxis": {"exponentformat": "e", "gridcolor": GRID_COLOR, "visible": bool(epochs), "automargin": True},
        "annotations": _note(not epochs),
    }
    return {"data": [trace], "layout": layout}
