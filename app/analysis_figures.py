"""Figure and thumbnail builders of the comparison views: arrays in, Plotly figures or Dash HTML out.

No callback context and no model loading here: the pages fetch numbers from :mod:`app.core.stats` and pass them in.
Heatmaps of layer grids reuse :func:`app.figures.activation_heatmap`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from dash import html
from PIL import Image

from app.core.grid import tile
from app.figures import MARGIN, activation_heatmap

THUMBNAIL_PX = 56
THUMBNAIL_STYLE = {"width": f"{THUMBNAIL_PX}px", "height": f"{THUMBNAIL_PX}px", "imageRendering": "pixelated",
                   "border": "1px solid #ccc"}


def value_range(grids: Sequence[np.ndarray]) -> tuple[float, float]:
    """(min, max) over several grids, ignoring NaN padding: the one colour scale that makes them comparable."""
    finite = [g[np.isfinite(g)] for g in grids]
    finite = [f for f in finite if f.size]
    if not finite:
        return (0.0, 1.0)
    low = float(min(f.min() for f in finite))
    high = float(max(f.max() for f in finite))
    return (low, high if high > low else low + 1e-6)


def symmetric_range(grids: Sequence[np.ndarray]) -> tuple[float, float]:
    """(-m, m) with m the largest |value| over the grids: a diverging scale centred on 0."""
    low, high = value_range(grids)
    bound = max(abs(low), abs(high), 1e-6)
    return (-bound, bound)


def difference_heatmap(difference: np.ndarray, title: str, zrange: tuple[float, float] | None = None) -> go.Figure:
    """A layer-output difference [H, W, C] or [N] tiled as a grid on the diverging RdBu scale centred on 0.

    Red is positive and blue negative (RdBu reversed), as usual for differences.
    """
    grid, layout = tile(difference)
    zrange = zrange or symmetric_range([grid])
    return activation_heatmap(grid, layout, "rdbu", reverse=True, zrange=zrange, title=title, zmid=0.0)


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str], selected: tuple[int, int] | None = None):
    """The confusion matrix as a clickable heatmap with counts in the cells.

    Colour follows log(1 + count) so the few confusions stay visible next to the large diagonal; the text and
    hover show the real counts. Axes are class numbers (ticks show names) so a click returns (predicted, true).

    Args:
        matrix: [classes, classes] counts, row = true class, column = predicted class.
        class_names: tick labels.
        selected: (true, predicted) cell to outline.
    """
    matrix = np.asarray(matrix)
    n = len(matrix)
    ticks = dict(tickmode="array", tickvals=list(range(n)), ticktext=list(class_names))
    figure = go.Figure(
        go.Heatmap(
            z=np.log1p(matrix).astype(np.float32),
            x=list(range(n)),
            y=list(range(n)),
            text=matrix.astype(str),
            texttemplate="%{text}",
            customdata=matrix,
            colorscale="Blues",
            showscale=False,
            xgap=1,
            ygap=1,
            hovertemplate="true %{y} · predicted %{x}<br>%{customdata} images<extra></extra>",
        )
    )
    if selected is not None:
        true_class, predicted_class = selected
        figure.add_shape(
            type="rect", x0=predicted_class - 0.5, x1=predicted_class + 0.5, y0=true_class - 0.5, y1=true_class + 0.5,
            line=dict(color="#d62728", width=3),
        )
    figure.update_layout(
        title=dict(text=f"confusion matrix · {int(matrix.trace())}/{int(matrix.sum())} correct", font=dict(size=13)),
        margin=dict(l=50, r=10, t=40, b=40),
        plot_bgcolor="white",
        xaxis=dict(title="predicted", side="bottom", **ticks),
        yaxis=dict(title="true", autorange="reversed", scaleanchor="x", **ticks),
    )
    return figure


def ranking_figure(scores: np.ndarray, signed: np.ndarray, ranking: np.ndarray, top: int, title: str) -> go.Figure:
    """Bars of the ``top`` units that differ most (mean |difference|), coloured by the sign of the mean difference."""
    units = ranking[:top]
    colors = np.where(signed[units] >= 0, "#d62728", "#1f77b4")
    figure = go.Figure(
        go.Bar(
            x=[f"#{u}" for u in units],
            y=scores[units],
            marker_color=colors.tolist(),
            customdata=np.stack([units, signed[units]], axis=-1),
            hovertemplate="unit %{customdata[0]}<br>mean |diff| %{y:.4g}<br>mean diff %{customdata[1]:.4g}"
            "<extra></extra>",
        )
    )
    figure.update_layout(
        title=dict(text=title, font=dict(size=13)), margin=dict(l=40, r=10, t=40, b=40), plot_bgcolor="white",
        xaxis=dict(type="category", title="unit (red: larger for A, blue: larger for B)"),
        yaxis=dict(title="mean |A − B|"),
    )
    return figure


def contribution_bars(values: Sequence[float], labels: Sequence[str], title: str) -> go.Figure:
    """Small bar chart: sum of contributions, bias and logit of each class, so the reader sees they add up."""
    figure = go.Figure(go.Bar(x=list(labels), y=list(values), marker_color="#6c8ebf",
                              hovertemplate="%{x}: %{y:.4g}<extra></extra>"))
    figure.update_layout(title=dict(text=title, font=dict(size=13)), margin=MARGIN, plot_bgcolor="white")
    return figure


def image_png(image: np.ndarray) -> str:
    """A test image [H, W, C] in [0, 1] (or 0-255) as a PNG data URI for an ``<img>``."""
    values = np.asarray(image, dtype=np.float32)
    if values.max() <= 1.0:
        values = values * 255
    pixels = np.clip(values, 0, 255).astype(np.uint8)
    pil = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels[..., :3])
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def thumbnail(image: np.ndarray, caption: Sequence, href: str | None = None, title: str = "", wrong: bool = False):
    """One thumbnail with a caption under it; a link when ``href`` is given (e.g. to the explorer)."""
    style = dict(THUMBNAIL_STYLE, borderColor="#d62728" if wrong else "#ccc")
    picture = html.Img(src=image_png(image), style=style, title=title)
    body = [picture, html.Div(caption, className="small text-center", style={"lineHeight": "1.1"})]
    inner = html.A(body, href=href, className="text-decoration-none text-reset") if href else html.Div(body)
    return html.Div(inner, className="d-inline-block m-1 align-top", style={"width": f"{THUMBNAIL_PX + 10}px"})


def image_caption(index: int, label: int, predicted: int, confidence: float, class_names: Sequence[str]) -> list:
    """``#12 · 4→9 · 87%``: the image number, true class, prediction (red when wrong) and confidence."""
    wrong = label != predicted
    return [
        html.Span(f"#{index}"),
        html.Br(),
        html.Span(f"{class_names[label]}→"),
        html.Span(class_names[predicted], className="text-danger fw-bold" if wrong else ""),
        html.Span(f" {confidence:.0%}"),
    ]


def top_images_gallery(
    images: np.ndarray,
    indices: Sequence[int],
    values: Sequence[float],
    labels: np.ndarray,
    predicted: np.ndarray,
    class_names: Sequence[str],
    href_for,
) -> html.Div:
    """Thumbnails of the top images of a unit, each with its value, class and a link (``href_for(index)``)."""
    items = []
    for rank, (index, value) in enumerate(zip(indices, values, strict=True), start=1):
        index = int(index)
        caption = [html.Span(f"{rank}. #{index}"), html.Br(), html.B(f"{value:.3g}"), html.Br(),
                   html.Span(f"{class_names[labels[index]]}→{class_names[predicted[index]]}")]
        items.append(thumbnail(images[index], caption, href_for(index), f"image {index}: {value:.4g}",
                               wrong=bool(labels[index] != predicted[index])))
    return html.Div(items)
