"""Page callbacks and layouts called directly with bad values in every argument: they answer (a message, an alert
or no update) and never raise, so the app's on_error net is not what keeps a forged request from failing.

Each callback starts from a valid call; one argument at a time is replaced by a bad value. Callbacks that read
``dash.ctx`` (which exists only inside a request) are covered by tests/integration/hostile instead.
"""

from __future__ import annotations

import pytest

from app.jobs.runner import EmbeddedRunner
from tests.app_context import refresh_context, served_context

BAD_VALUES = [None, True, False, 0, -1, 1.5, 10**30, 10**400, "", "１", "1_0", "٣", "NaN", "x" * 5000, "\ud800",
              [], [1], ["Conv2D_1"], [0.2, "x"], {}, {"a": 1}, {"job": ["x"], "total": "3"}, [[[[]]]]]
CLICK = {"points": [{"x": 2, "y": 1, "customdata": [3, 1, 2]}]}
TINY_CLICK = {"points": [{"x": 0, "y": 0, "customdata": [1, 0, 0]}]}  # map 1 of the tiny model's conv layer
VIEW = {"job": "0123456789ab", "epochs": 3, "status": "succeeded", "total": 3}
UNIT_STATE = {"model": "mnist-cnn", "layer": "Conv2D_1", "unit": 3}
UNIT = {"unit": 3, "clicked": True}
# a 2 x 2 grey PNG as dcc.Upload sends it
PNG = ("data:image/png;base64,"
       "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAAAAABX3VL4AAAADklEQVR4nGNsYGBiYAAAApIAhPd8o1gAAAAASUVORK5CYII=")


@pytest.fixture(scope="module")
def pages():
    from app.main import app  # noqa: F401 - creating the app imports the pages
    from app.pages import classes, compare, explore, features, finder, models, train, why
    from app.ui import navigation, unit_panel

    return {"explore": explore, "compare": compare, "finder": finder, "classes": classes, "train": train,
            "models": models, "unit_panel": unit_panel, "navigation": navigation, "features": features, "why": why}


@pytest.fixture
def store(app_store, app_state, monkeypatch):
    """The app's store, a fresh job store, and a runner that ends a started job at once instead of launching it."""
    monkeypatch.setattr(EmbeddedRunner, "_launch", lambda runner, job: runner.store.finish(job.id, "failed"))
    refresh_context()
    yield app_store
    refresh_context()


def valid_calls(pages) -> dict[str, tuple]:
    """``"page.callback" -> (function, valid arguments)``."""
    form = pages["train"].default_form()
    form["name"] = "mnist-cnn"  # taken: even a valid form does not start a job
    return {
        "explore.render": (pages["explore"].render, ("mnist-cnn", "Conv2D_3", 42, "jet", False, True)),
        "explore.on_model_change": (pages["explore"].on_model_change, ("tiny", "Conv2D_1")),
        "compare.render_images": (pages["compare"].render_images, ("mnist-cnn", "Conv2D_3", "3, 12", "jet", 3, 12)),
        "compare.render_difference": (pages["compare"].render_difference,
                                      (3, 12, "mnist-cnn", "Conv2D_3", "3, 12", "jet")),
        "compare.on_model_change": (pages["compare"].on_model_change, ("tiny", "Conv2D_3")),
        "compare.on_drawing": (pages["compare"].on_drawing,
                               ({"strokes": [[[60, 40], [200, 240]]], "width": 18, "size": 280}, True, "mnist-cnn",
                                "3, u:0123456789abcdef0123", "u:0123456789abcdef0123")),
        "compare.on_upload": (pages["compare"].on_upload, ([PNG], True, "mnist-cnn", "3, 12")),
        "finder.render": (pages["finder"].render, ("mnist-cnn", 4, 9, "wrong", [0.0, 1.0], "likeness", 9,
                                                     "Dense_1", [3])),
        "finder.on_model_change": (pages["finder"].on_model_change, ("tiny", "Dense_1")),
        "finder.on_closest": (pages["finder"].on_closest, (1, [4, 9])),
        "finder.on_closest_by_likeness": (pages["finder"].on_closest_by_likeness, (1, [4, 9])),
        "finder.on_cell_click": (pages["finder"].on_cell_click, (CLICK, "Dense_1")),
        "finder.on_pick": (pages["finder"].on_pick, ([True, False], [{"type": "finder-pick", "index": 3},
                                                                       {"type": "finder-pick", "index": 4}], [4])),
        "finder.on_basket_change": (pages["finder"].on_basket_change,
                                    ([3, 4], [True], [{"type": "finder-pick", "index": 3}], "mnist-cnn")),
        "classes.render_classes": (pages["classes"].render_classes, ("mnist-cnn", "Dense_1", 4, 9, "viridis")),
        "classes.show_why_link": (pages["classes"].show_why_link, ("mnist-cnn", 4, 9, {"image": 5, "mlp": "Dense_1"})),
        "classes.sync_query": (pages["classes"].sync_query, ("mnist-cnn", "Conv2D_3", 4, 9, "jet", UNIT,
                                                             {"image": 5, "mlp": None})),
        "why.render": (pages["why"].render, ("mnist-cnn", "Dense_1", 5, {"id": "u:0123456789abcdef0123", "over": 5},
                                             4, -1)),
        "why.on_model_change": (pages["why"].on_model_change, ("tiny",)),
        "classes.show_unit_panel": (pages["classes"].show_unit_panel, (UNIT, "mnist-cnn", "Conv2D_3")),
        "explore.show_unit_panel": (pages["explore"].show_unit_panel, (UNIT, "mnist-cnn", "Conv2D_3")),
        "explore.sync_query": (pages["explore"].sync_query, ("?model=mnist-cnn&image=3", UNIT)),
        "compare.show_unit_panel": (pages["compare"].show_unit_panel, (UNIT, "mnist-cnn", "Conv2D_3")),
        "compare.sync_query": (pages["compare"].sync_query, ("?model=mnist-cnn&images=3,4", UNIT)),
        "compare.show_unit_across_images": (pages["compare"].show_unit_across_images,
                                            (UNIT, "mnist-cnn", "Conv2D_3", "3, 12", "jet", 3, 12)),
        "classes.on_model_change": (pages["classes"].on_model_change, ("tiny", "Conv2D_3", 4, 9)),
        "train.on_architecture_change": (pages["train"].on_architecture_change, ("32, 64", 2, "100", "Conv2D_1")),
        "train.on_start": (pages["train"].on_start, (1, *(form[key] for key in pages["train"].FIELD))),
        "train.on_stop": (pages["train"].on_stop, (1, VIEW, True)),
        "train.on_probe_now": (pages["train"].on_probe_now, (1, 3, "Conv2D_1", VIEW)),
        "train.on_tick": (pages["train"].on_tick, (1, VIEW["job"], None)),
        "train.on_new_epochs": (pages["train"].on_new_epochs, (VIEW, 2, 3)),
        "train.on_probe_epoch": (pages["train"].on_probe_epoch, (2, VIEW)),
        "train.on_view_settings": (pages["train"].on_view_settings, (VIEW,)),
        "train.on_rerun": (pages["train"].on_rerun, (1, VIEW)),
        "models.delete_confirmed": (pages["models"].delete_confirmed, (1, "no-such-model")),
        "models.show_model_file": (pages["models"].show_model_file, ("my cnn.keras",)),
        "models.show_test_set_file": (pages["models"].show_test_set_file, ("digits.npz",)),
        "compare.overlay_inputs": (pages["compare"].overlay_inputs,
                                   ("smoothgrad", 4, [{"type": "compare-input", "index": 0},
                                                      {"type": "compare-input", "index": 1}], "mnist-cnn", "3, 12")),
        "explore.render_attribution": (pages["explore"].render_attribution, ("gradcam", 9, "mnist-cnn", 12, None)),
        "explore.on_compare_choice_change": (pages["explore"].on_compare_choice_change,
                                             ([3, 4], "?x", "mnist-cnn", "Conv2D_1", 5, "jet")),
        "explore.on_add_to_compare": (pages["explore"].on_add_to_compare, (1, [3], 5)),
        "navigation.on_place_or_basket_change": (
            pages["navigation"].on_place_or_basket_change,
            ([3, 4], {"model": "mnist-cnn", "layer": "Conv2D_1", "image": 3},
             [{"type": pages["navigation"].NAV_LINK, "path": "/"}])),
        # the tiny model's layer: a valid call starts a background job, and a small one ends in a second
        "features.render_features": (pages["features"].render_features, ("tiny", "hidden", 1)),
        "features.on_features_model_change": (pages["features"].on_features_model_change,
                                              ("tiny", "conv", "Conv2D_3", 4, 9)),
        "features.on_pair_toggle": (pages["features"].on_pair_toggle, (True,)),
        "features.show_unit": (pages["features"].show_unit, ({"unit": 1}, 5, "tiny", "conv")),
        "features.on_grid_click": (pages["features"].on_grid_click, (TINY_CLICK, "tiny", "conv")),
        "features.on_layer_change": (pages["features"].on_layer_change, ("conv",)),
        "features.render_attribution": (pages["features"].render_attribution,
                                        ("mnist-cnn", 12, "gradcam", -1, "Conv2D_3", True, 3, 8)),
        "features.sync_features_query": (pages["features"].sync_features_query,
                                         ("mnist-cnn", "Conv2D_3", 12, "gradient", 4, "Conv2D_3", True, 3, 8)),
        "unit_panel.on_rank_by_change": (pages["unit_panel"].on_rank_by_change, ("max", UNIT_STATE)),
        "unit_panel.unit_panel": (  # the page name is the page's own constant, not an input
            lambda *args: pages["unit_panel"].unit_panel("explore", *args), ("mnist-cnn", "Conv2D_1", 3)),
    }


def test_callbacks_answer_bad_values_without_raising(pages, store):
    """One test for every callback (one store set-up): the failure lists every argument that leaked an error."""
    leaks = []
    for name, (function, arguments) in valid_calls(pages).items():
        function(*arguments)  # the valid call itself works
        for position in range(len(arguments)):
            for bad in BAD_VALUES:
                changed = (*arguments[:position], bad, *arguments[position + 1:])
                try:
                    function(*changed)
                except Exception as exc:  # noqa: BLE001 - the point: nothing may escape
                    leaks.append(f"{name} argument {position} = {bad!r:.40}: {type(exc).__name__}: {str(exc)[:100]}")
    assert not leaks, "\n".join(leaks)
    assert served_context().job_store.active() is None


def test_every_page_callback_is_called(pages):
    from app.main import app

    app.server.test_client().get("/_dash-dependencies")  # Dash fills its callback map at the first request
    names = {spec["callback"].__name__ for spec in app.callback_map.values() if "callback" in spec}
    called = {name.split(".")[1] for name in valid_calls(pages)}
    # these read dash.ctx (tests/integration/hostile calls them); the router (update) is Dash's own
    assert names - called == {"on_unit_choice", "on_page_choice", "on_class_unit_choice", "on_node_click",
                              "ask_to_delete", "on_remove", "on_own_image", "update"}


def test_layouts_answer_bad_query_values(pages, store):
    import inspect

    for page in ("explore", "compare", "finder", "classes", "train", "models", "features", "why"):
        layout = pages[page].layout
        for parameter in inspect.signature(layout).parameters.values():
            if parameter.kind is not inspect.Parameter.POSITIONAL_OR_KEYWORD:
                continue
            for bad in ["１", "1_0", "-1", "99999999999999999999", "nan", "x" * 5000, "", ["1", "2"], [], "0.5,1_0"]:
                layout(**{parameter.name: bad}, unknown=bad)  # as Dash's router calls it: text, lists when repeated


def test_links_with_non_ascii_or_underscored_numbers_fall_back(pages, store):
    explore, finder, classes, compare, train = (pages[name] for name in ("explore", "finder", "classes", "compare",
                                                                         "train"))
    page = explore.layout(image="１")
    assert page[explore.IMAGE].value == 0
    assert "Image '１' is not a whole number; showing 0." in str(page[explore.IDS.notice].children)
    assert explore.layout(image=["7", "8"])[explore.IMAGE].value == 7  # a repeated parameter: its first value
    page = finder.layout(true="４", predicted="1_0", conf="0.5,1_0")
    assert page[finder.TRUE_CLASS].value is None and page[finder.PREDICTED_CLASS].value is None
    assert page[finder.CONFIDENCE].value == [0.0, 1.0]
    assert finder.layout(conf="0.25,0.5")[finder.CONFIDENCE].value == [0.25, 0.5]
    page = classes.layout(a="３", b="1_0", image="1_0")
    assert (page[classes.CLASS_A].value, page[classes.CLASS_B].value, page[classes.WHY_IMAGE].data["image"]) == (
        4, 9, None)
    page = compare.layout(images=["3,4", "5"], a="１", b="4")
    assert page[compare.IMAGES].value == "3,4"
    assert page[compare.DIFF_A].value is None and page[compare.DIFF_B].value == 4
    assert train.layout(job=["abc", "def"])[train.PIN].data == "abc"
    assert train.layout(job="../x")[train.PIN].data is None


def test_bad_values_become_the_pages_message(pages, store):
    *kept, message = pages["explore"].render("mnist-cnn", ["Conv2D_1"], 1, "viridis", False, False)
    assert "layer must be text" in str(message.children)
    *_, message = pages["explore"].render("mnist-cnn", "Conv2D_1", "１", "viridis", False, False)
    assert "the test image must be an integer" in str(message.children)
    *_, message = pages["explore"].render("mnist-cnn", "Conv2D_1", 1, "nope", False, False)
    assert "the colormap must be one of viridis" in str(message.children)
    *_, message = pages["finder"].render("mnist-cnn", "４", None, "all", [0, 1], "index", None, None)
    assert "the true class must be an integer" in str(message.children)
    *_, message = pages["finder"].render("mnist-cnn", None, None, "all", [0, 10**400], "index", None, None)
    assert "the highest confidence is too large" in str(message.children)
    *_, message = pages["classes"].render_classes("mnist-cnn", "Dense_1", 4, [9], "viridis")
    assert "class B must be an integer" in str(message.children)
    message, pinned, *_ = pages["train"].on_start(1, *([["x"]] * len(pages["train"].FIELD)))
    assert "name must be text" in str(message.children) and "epochs must be a number" in str(message.children)


# int() takes full-width digits and underscores: "１, 1_0" must not open images 1 and 10.
def test_compare_image_list_is_parsed_strictly(pages, store):
    _, options, *_, message = pages["compare"].render_images("mnist-cnn", "Conv2D_3", "１, 1_0, 3", "jet", None, None)
    assert [option["value"] for option in options] == [3]
    assert "'１' is not an image number" in str(message[0].children)
