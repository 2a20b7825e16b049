"""What Explore draws for one view: the activation grid, the input image, the class probabilities, the line under
the image and the link of the view drawn.

One function for both ways a view reaches the browser: Explore's render callback (a change of model, layer,
colormap, a typed number) and the explorer-view route that ◀ ▶, the arrow keys and "random" fetch directly
(``assets/image_stepping.js``), so a stepped image is drawn by exactly the figures a reload would draw.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dash import html

from app.context import AppContext
from app.core.grid import MAP_ORDERS
from app.figures.charts import input_image_figure, probability_bars
from app.figures.grids import activation_heatmap, mark_dead_units, mark_page
from app.ui.components import verdict
from app.ui.links import grid_values_link, training_link, why_link
from app.views.explore import ORDER_LABELS, ExploreView, explore

# The grid's size on a 1400 x 900 window (72vh high, 3/4 of the width), for the maps' number labels.
HEATMAP_PX = (900, 560)
# The colour bar of a grid with the blog's scaling: each map standardised to mean 128 and 64 per standard deviation.
STANDARDISED = "standardised: 128 ± 64 per σ"


@dataclass(frozen=True)
class ExplorerAnswer:
    """Explore's outputs for one view.

    Attributes:
        heatmap, input_image, probabilities: the three figures.
        caption: the line under the image: its name, true and predicted class, links to "Why this prediction?"
            (and, for the user's own image, a training run that watches it).
        query: the query string that reopens the view drawn, without the chosen unit (the page adds it).
    """

    heatmap: dict
    input_image: dict
    probabilities: dict
    caption: list
    query: str


def explorer_answer(context: AppContext, view: ExploreView, prefetch_neighbours: bool = True) -> ExplorerAnswer:
    """Everything Explore shows for ``view`` (:func:`app.views.explore.explore`), the chosen unit outlined.

    ``prefetch_neighbours``: run the previous and next test images' passes in the background, so that stepping
    finds them cached; off where the browser fetches the neighbours' answers itself.

    Raises:
        ExplorerError: what :func:`~app.views.explore.explore` raises (StillComputing while the layer's fixed colour
            scale is computed in the background).
    """
    result = explore(context.store, context.user_images, view, context.statistics)
    loaded, info, shown = result.loaded, result.layer, result.image
    if prefetch_neighbours and not shown.own:
        loaded.engine.prefetch_neighbours(shown.subject)
    units = "maps" if info.is_map else "nodes"
    page = result.page
    on_page = "" if page is None else f" · page {page.number} of {page.count}, {ORDER_LABELS[page.order]}"
    heatmap = activation_heatmap(
        result.grid,
        result.grid_layout,
        view.cmap,
        view.reverse,
        zrange=result.colour_range,
        title=f"{info.label}: {info.n_units} {units} of {shown.name}" + (" (standardised)" if view.scale else "")
        + (" · fixed scale" if view.fixed else "") + on_page,
        unit_names=result.unit_names,
        size_px=HEATMAP_PX,
        values_url=grid_values_link(loaded.name, loaded.version, info.name, shown.key, view.scale,
                                    *((None, None) if page is None else (page.number, page.order))),
        value_name=STANDARDISED if view.scale else "activation",
        chosen_unit=view.unit,
        unit_numbers=None if page is None else page.units,
    )
    dead = context.statistics.dead_units_if_cheap(loaded, info.name)
    if dead is not None:
        mark_dead_units(heatmap, result.grid_layout, dead, units[:-1], None if page is None else page.units)
    if page is not None:
        mark_page(heatmap, page)
    names = loaded.class_names
    # the link names the page drawn (and its order) only where there are pages; the unit is the page's to add
    drawn = replace(view, model=loaded.name, layer=info.name, image=shown.key, unit=None,
                    page=None if page is None else page.number, order=view.order if page else MAP_ORDERS[0])
    title = "your image · what the model sees" if shown.own else f"input · class {names[shown.label]}"
    described = verdict(names, shown.label, result.probabilities) + [
        html.Span(" · "), html.A("Why this prediction?", href=why_link(loaded.name, shown.key),
                                 title="how each node of the last dense layer pushes the logits")]
    if shown.own:  # the test set of a new run need not be this model's: only an own image is the same
        described += [html.Span(" · "), html.A("watch it learn", href=training_link(shown.key),
                                                title="a training run that shows this image at every epoch")]
    return ExplorerAnswer(
        heatmap=heatmap,
        input_image=input_image_figure(shown.pixels, title),
        probabilities=probability_bars(result.probabilities, names, shown.label),
        caption=[html.Span(f"{shown.name[0].upper()}{shown.name[1:]}: "), *described],
        query=drawn.to_query(),
    )
