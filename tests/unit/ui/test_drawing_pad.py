"""The drawing pad's component tree: the ids a page wires, the data attributes the script reads."""

from __future__ import annotations

import pytest

from app.core.errors import InvalidInput
from app.ui.drawing_pad import PAD_PX, drawing_pad, drawing_pad_ids, pad_image, upload_image


def components(tree):
    yield tree
    children = getattr(tree, "children", None)
    for child in children if isinstance(children, list) else [children] if children is not None else []:
        if hasattr(child, "to_plotly_json"):
            yield from components(child)


def test_the_pad_has_every_id_a_page_wires_and_tells_the_script_its_store():
    ids = drawing_pad_ids("explore")
    found = {getattr(component, "id", None): component for component in components(drawing_pad("explore"))}
    assert set(vars(ids).values()) <= set(found)
    container = found[ids.pad].to_plotly_json()["props"]
    assert container["className"] == "drawing-pad" and container["data-store"] == ids.strokes
    assert container["data-size"] == str(PAD_PX)
    for button, action in ((ids.clear, "clear"), (ids.undo, "undo")):
        props = found[button].to_plotly_json()["props"]
        assert props["data-pad"] == ids.pad and props["data-pad-action"] == action
    assert found[ids.centre].value is True and found[ids.strokes].data is None


def test_an_empty_pad_is_no_image_and_malformed_data_is_refused():
    assert pad_image(None, None) is None and pad_image(None, {"strokes": []}) is None
    with pytest.raises(InvalidInput):
        pad_image(None, ["not", "a", "drawing"])
    for contents in ("", "hello", "data:image/png;base64,@@@", "data:image/png,plain"):
        with pytest.raises(InvalidInput):
            upload_image(None, contents)
