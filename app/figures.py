"""Figure builders: arrays in, Plotly figures out. No Dash, no callback context; tested on shapes and values."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from app.core.grid import GridLayout, unit_coordinates

COLORMAPS = ("viridis", "inferno", "magma", "plasma", "cividis", "jet", "greys", "hot", "rdbu")
# Plotly's names where they differ from matplotlib's (the blog's vocabulary); "greys" runs white to black.
_PLOTLY_SCALES = {"jet": "Jet", "greys": "Greys", "hot": "Hot", "rdbu": "RdBu"}
SEPARATOR_COLOR = "rgba(255,255,255,0.85)"
MARGIN = dict(l=10, r=10, t=30, b=10)


def colorscale(name: str, reverse: bool = False) -> str:
    """The Plotly colorscale for a colormap name from :data:`COLORMAPS`, optionally reversed (``_r``)."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {', '.join(COLORMAPS)}")
    base = _PLOTLY_SCALES.get(name, name.capitalize())
    # Plotly's Greys runs white->black; flip it so "greys" shows bright activations bright, like matplotlib.
    flip = reverse != (name == "greys")
    return base + ("_r" if flip else "")


def _separator_shapes(layout: GridLayout) -> list[dict]:
    """Thin lines between units; skipped for node grids (1x1 units), where gaps would hide the values."""
    if layout.unit_height == 1 and layout.unit_width == 1:
        return []
    height, width = layout.shape
    line = dict(color=SEPARATOR_COLOR, width=1)
    xs = [c * layout.unit_width - 0.5 for c in range(1, layout.cols)]
    ys = [r * layout.unit_height - 0.5 for r in range(1, layout.rows)]
    shapes = [dict(type="line", x0=x, x1=x, y0=-0.5, y1=height - 0.5, line=line) for x in xs]
    shapes += [dict(type="line", y0=y, y1=y, x0=-0.5, x1=width - 0.5, line=line) for y in ys]
    return shapes


def activation_heatmap(
    grid: np.ndarray,
    layout: GridLayout,
    cmap: str = "viridis",
    reverse: bool = False,
    zrange: tuple[float, float] | None = None,
    title: str = "",
    zmid: float | None = None,
    unit_word: str | None = None,
) -> go.Figure:
    """One heatmap of a tiled layer output, top-down, with separators and a hover naming the unit.

    Args:
        grid: the tiled grid (see :func:`app.core.grid.tile`), NaN where there is no unit.
        layout: its layout.
        cmap, reverse: colormap name and direction.
        zrange: fixed colour range (shared between figures that compare); default: the grid's own range.
        title: figure title.
        zmid: centre of a diverging scale (e.g. 0 for differences).
        unit_word: "map" or "node" in the hover (default: from the layout).

    Returns:
        A figure whose ``data[0].z`` is ``grid`` as float32 and ``customdata`` is (unit, row, col) per cell.
    """
    word = unit_word or ("node" if layout.unit_height == layout.unit_width == 1 else "map")
    coords = unit_coordinates(layout)
    if word == "node":
        hover = "node %{customdata[0]}<br>value %{z:.4g}<extra></extra>"
    else:
        hover = "map %{customdata[0]}<br>row %{customdata[1]}, col %{customdata[2]}<br>value %{z:.4g}<extra></extra>"
    heatmap = go.Heatmap(
        z=grid.astype(np.float32),
        customdata=coords,
        colorscale=colorscale(cmap, reverse),
        hovertemplate=hover,
        hoverongaps=False,
        colorbar=dict(thickness=12, len=0.9),
    )
    if zrange is not None:
        heatmap.update(zmin=float(zrange[0]), zmax=float(zrange[1]))
    if zmid is not None:
        heatmap.update(zmid=float(zmid))
    figure = go.Figure(heatmap)
    figure.update_layout(
        title=dict(text=title, font=dict(size=13)),
        margin=MARGIN,
        shapes=_separator_shapes(layout),
        plot_bgcolor="white",
        uirevision=f"{layout.shape}",
    )
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    return figure


def input_image_figure(image: np.ndarray, title: str = "", cmap: str = "greys") -> go.Figure:
    """The input image [H, W, C] as a heatmap (single channel) or RGB picture (three channels)."""
    if image.shape[-1] == 3:
        figure = go.Figure(go.Image(z=np.clip(image * (255 if image.max() <= 1 else 1), 0, 255).astype(np.uint8)))
    else:
        figure = go.Figure(
            go.Heatmap(
                z=image[..., 0].astype(np.float32),
                colorscale=colorscale(cmap),
                showscale=False,
                hovertemplate="row %{y}, col %{x}<br>pixel %{z:.3f}<extra></extra>",
            )
        )
    figure.update_layout(title=dict(text=title, font=dict(size=13)), margin=MARGIN, plot_bgcolor="white")
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    return figure


PREDICTED_COLOR = "#d62728"
OTHER_COLOR = "#9bb7d4"
TRUE_COLOR = "#2ca02c"


def probability_bars(probabilities: np.ndarray, class_names: list[str], label: int | None) -> go.Figure:
    """Class probabilities as bars: the predicted class in red, the true class outlined and marked in green."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    predicted = int(probabilities.argmax())
    colors = [PREDICTED_COLOR if i == predicted else OTHER_COLOR for i in range(len(probabilities))]
    outline = [3 if i == label else 0 for i in range(len(probabilities))]
    figure = go.Figure(
        go.Bar(
            x=list(class_names),
            y=probabilities,
            marker=dict(color=colors, line=dict(color=TRUE_COLOR, width=outline)),
            hovertemplate="class %{x}<br>p = %{y:.4f}<extra></extra>",
        )
    )
    if label is not None and 0 <= label < len(class_names):
        figure.add_annotation(
            x=class_names[label], y=probabilities[label], text="true", showarrow=True, arrowhead=2,
            arrowcolor=TRUE_COLOR, font=dict(color=TRUE_COLOR), ay=-25,
        )
    verdict = "correct" if predicted == label else "wrong"
    figure.update_layout(
        title=dict(
            text=f"predicted {class_names[predicted]} ({probabilities[predicted]:.1%}) · {verdict}",
            font=dict(size=13),
        ),
        margin=dict(l=40, r=10, t=40, b=30),
        yaxis=dict(range=[0, 1.05], title="probability"),
        xaxis=dict(type="category"),
        plot_bgcolor="white",
    )
    return figure
