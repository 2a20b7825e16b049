"""Every page URL with hostile query strings: the page (its HTML) and its layout (built by Dash's pages router in
the ``_pages_location`` callback, as the browser asks for it) are served, never a 5xx, never a failure the app's
``on_error`` net has to catch. Invalid parameters fall back to defaults with a notice.

Queries hold every parameter the page's ``layout(**query)`` takes, unknown ones, repeated ones (which arrive as
lists), and values such as ``１``, ``1_0``, ``NaN``, ``%FF``, very long text and odd Unicode.
"""

from __future__ import annotations

import inspect
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.integration.hostile.support import (
    DOMAIN_STRINGS,
    NUMBER_LOOKALIKES,
    callback_body,
    captured_errors,
    describe,
    examples,
    strict_json,
)
from tests.integration.hostile.test_callbacks_answer_hostile_values import DEPENDENCIES, FAILURE_LOGGERS

PAGES = {"/": "explore", "/compare": "compare", "/finder": "finder", "/classes": "classes", "/train": "train",
         "/features": "features"}
ROUTER = next(dependency for dependency in DEPENDENCIES if "_pages_content.children" in dependency.output)
UNKNOWN_KEYS = ["x", "_other", "layout", "model[]", "", "a b", "é", "__class__", "kwargs"]


def _parameters(module_name: str) -> list[str]:
    import importlib

    from app.main import app  # noqa: F401 - registers the pages

    page = importlib.import_module(f"app.pages.{module_name}")
    if hasattr(page, "QUERY_KEYS"):  # a page whose layout reads its View from the whole query
        return list(page.QUERY_KEYS)
    return [name for name, parameter in inspect.signature(page.layout).parameters.items()
            if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]


PARAMETERS = {path: _parameters(module) for path, module in PAGES.items()}

# Text a URL can carry (no lone surrogates: a browser cannot encode them), hostile where a number or name belongs.
url_text = st.one_of(
    st.sampled_from(NUMBER_LOOKALIKES[:-4] + DOMAIN_STRINGS + ["0,1", "3,12,x", "1,2,3,4,5,6,7,8,9,10", "0.2,0.9",
                                                              "1,0", "nan,1", "0.5", "%FF", "a%00b", "x" * 3000]),
    st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=25),
)


def queries(path: str) -> st.SearchStrategy:
    """Lists of ``(key, value)`` pairs: the page's own parameters (maybe repeated) and unknown ones."""
    keys = st.one_of(st.sampled_from(PARAMETERS[path]), st.sampled_from(UNKNOWN_KEYS))
    return st.lists(st.tuples(keys, url_text), max_size=6)


def encoded(pairs) -> str:
    """``?k=v&...`` percent-encoded as a browser's location.search holds it."""
    return "?" + "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in pairs) if pairs else ""


def test_every_page_takes_query_parameters():
    assert PARAMETERS["/"] == ["model", "layer", "image", "cmap", "reverse", "scale", "fixed", "unit", "method",
                               "target", "page", "order"]
    assert all(PARAMETERS[path] for path in PAGES)


@pytest.mark.parametrize("path", list(PAGES))
@examples(60)
@given(data=st.data())
def test_page_url_with_hostile_query_is_served(client, path, data):
    pairs = data.draw(queries(path), label="query")
    with captured_errors(*FAILURE_LOGGERS) as failures:
        page = client.get(path + encoded(pairs))
        layout = client.post("/_dash-update-component", json=callback_body(
            ROUTER,
            [{"id": "_pages_location", "property": "pathname", "value": path},
             {"id": "_pages_location", "property": "search", "value": encoded(pairs)}],
            [],
            ["_pages_location.pathname"],
        ))
    assert page.status_code == 200 and b"<html" in page.data.lower()
    assert not failures, describe(failures)
    assert layout.status_code == 200, layout.data[:500]
    assert "_pages_content" in strict_json(layout.data)["response"]


def open_page(client, path: str, search: str) -> str:
    """The layout Dash's pages router builds for ``path + search``, as JSON text."""
    response = client.post("/_dash-update-component", json=callback_body(
        ROUTER,
        [{"id": "_pages_location", "property": "pathname", "value": path},
         {"id": "_pages_location", "property": "search", "value": search}],
        [],
        ["_pages_location.pathname"],
    ))
    assert response.status_code == 200
    return response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("search", "notice"),
    [
        ("?image=%EF%BC%91", r"Image '\uff11' is not a whole number; showing 0."),
        ("?image=1_0", "Image '1_0' is not a whole number; showing 0."),
        ("?image=5000", "Image 5000 is out of range 0-999; showing 0."),
        ("?model=absent&model=tiny", "Model 'absent' is not available; showing 'mnist-cnn'."),
    ],
)
def test_explore_link_with_a_malformed_value_says_so(client, search, notice):
    assert notice in open_page(client, "/", search)
