"""app.ui.components: alerts, labelled columns, figure cards, layer and colormap choices, the output layer's unit
names, and the "true class, predicted class" verdict text and colours."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from dash import dcc, html
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.grid import COLORMAPS
from app.core.layer_graph import LayerInfo
from app.ui.components import (
    SMALL_CHART,
    TOOLBAR,
    colormap_dropdown,
    default_layer,
    error_alert,
    figure_card,
    info_alert,
    labelled,
    layer_options,
    output_unit_names,
    verdict,
)

LAYERS = [
    LayerInfo("dense_0", "Dense", (5,)),
    LayerInfo("conv_a", "Conv2D", (4, 4, 8)),
    LayerInfo("pool_a", "MaxPooling2D", (2, 2, 8)),
]


def text(parts: list) -> str:
    return "".join(str(part.children) for part in parts)


def test_alerts_are_dismissable_and_coloured_by_kind():
    warning, info = error_alert("bad"), info_alert("started")
    assert (warning.children, warning.color, warning.dismissable) == ("bad", "warning", True)
    assert (info.children, info.color, info.dismissable) == ("started", "info", True)


def test_labelled_puts_the_label_above_the_control_and_sizes_the_column_only_when_asked():
    control = dcc.Input(id="x")
    free = labelled("Layer", control)
    assert free.children[0].children == "Layer" and free.children[1] is control
    assert getattr(free, "lg", None) is None and getattr(free, "xs", None) is None
    sized = labelled("Layer", control, width=3)
    assert (sized.xs, sized.sm, sized.lg) == (12, 6, 3)


@pytest.mark.parametrize(("toolbar", "config"), [(True, TOOLBAR), (False, SMALL_CHART)])
def test_figure_card_holds_one_graph_with_the_toolbar_choice_and_an_optional_title(toolbar, config):
    card = figure_card("g1", "300px", title="Maps", toolbar=toolbar)
    title, loading = card.children.children
    assert isinstance(title, html.H6) and title.children == "Maps"
    graph = loading.children
    assert (graph.id, graph.style, graph.config) == ("g1", {"height": "300px"}, config)
    untitled = figure_card("g2", "100px")
    assert len(untitled.children.children) == 1


def test_layer_options_label_each_layer_with_its_output_shape():
    engine = SimpleNamespace(layers=LAYERS)
    assert layer_options(engine) == [
        {"label": "dense_0 · 5", "value": "dense_0"},
        {"label": "conv_a · 4×4×8", "value": "conv_a"},
        {"label": "pool_a · 2×2×8", "value": "pool_a"},
    ]


def test_default_layer_is_the_preferred_one_else_the_first_with_maps_else_the_first():
    engine = SimpleNamespace(layers=LAYERS)
    assert default_layer(engine, "pool_a") == "pool_a"
    assert default_layer(engine, "missing") == "conv_a"
    assert default_layer(engine) == "conv_a"
    assert default_layer(SimpleNamespace(layers=LAYERS[:1])) == "dense_0"


def test_output_unit_names_are_the_class_names_only_for_the_last_layer():
    from tests.conftest import build_tiny_model

    loaded = SimpleNamespace(model=build_tiny_model(), class_names=("a", "b", "c"))
    assert output_unit_names(loaded, "output") == ["a", "b", "c"]
    assert output_unit_names(loaded, "hidden") is None
    assert output_unit_names(SimpleNamespace(model=SimpleNamespace(layers=[]), class_names=()), "output") is None


@pytest.mark.parametrize(("value", "chosen"), [("magma", "magma"), ("nope", "viridis"), (None, "viridis")])
def test_colormap_dropdown_offers_every_colormap_and_falls_back_to_viridis(value, chosen):
    dropdown = colormap_dropdown("cm", value)
    assert [o["value"] for o in dropdown.options] == list(COLORMAPS)
    assert dropdown.value == chosen and dropdown.clearable is False and "magma" in COLORMAPS


NAMES = ["zero", "one", "two", "three"]


@settings(derandomize=True, max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0.001, 1.0), min_size=4, max_size=4),
    st.one_of(st.none(), st.integers(0, 3)),
)
def test_verdict_names_the_argmax_class_with_its_probability_coloured_by_correctness(weights, label):
    probabilities = np.array(weights) / np.sum(weights)
    predicted = int(np.argmax(probabilities))
    parts = verdict(NAMES, label, probabilities)
    said = f"predicted {NAMES[predicted]} ({100 * probabilities[predicted]:.1f}%)"
    if label is None:
        assert text(parts) == said
    else:
        assert text(parts) == f"true class {NAMES[label]}, {said}"
        bold = [p for p in parts if isinstance(p, html.B)][-1]
        assert bold.className == ("text-success" if predicted == label else "text-danger")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("label", [None, 2])
def test_verdict_says_there_is_no_prediction_for_non_finite_scores(bad, label):
    parts = verdict(NAMES, label, np.array([0.2, bad, 0.3, 0.1]))
    said = text(parts)
    assert said.endswith("no prediction: the model's output is not finite (the image holds NaN or infinity)")
    assert ("true class two" in said) == (label == 2) and "predicted" not in said
    assert parts[-1].className == "text-danger"
