"""The drawing pad in a real browser: strokes drawn with real pointer events (selenium actions) reach the server
as vectors and are read as the digit drawn; Undo and Clear change what is sent."""

from __future__ import annotations

import base64

import dash
import pytest
from dash import Input, Output, State, html
from dash.testing.wait import until
from selenium.webdriver.common.action_chains import ActionChains

from app import services
from app.config import PROJECT_ROOT
from app.core.user_images import provided_image
from app.ui.drawing_pad import drawing_pad, drawing_pad_ids, pad_image
from tests.conftest import BUNDLED_MODEL
from tests.digit_strokes import place

IDS = drawing_pad_ids("test")


@pytest.fixture
def pad_app(tmp_path, monkeypatch):
    """A page with the pad whose callback stores each drawing for mnist-cnn and shows the prediction."""
    monkeypatch.setenv("MODEL_STORE", str(BUNDLED_MODEL.parent))
    monkeypatch.setenv("STATE_DIR", str(tmp_path / "state"))
    services.reset()
    services.store().get("mnist-cnn")  # opened before the browser waits on it: TensorFlow's start takes seconds
    app = dash.Dash(__name__, assets_folder=str(PROJECT_ROOT / "assets"))
    app.layout = html.Div([drawing_pad("test"), html.Div(id="verdict")])

    @app.callback(Output("verdict", "children"), Output(IDS.preview, "src"), Input(IDS.strokes, "data"),
                  State(IDS.centre, "value"), prevent_initial_call=True)
    def show(data, centre):
        loaded = services.store().get("mnist-cnn")
        image = pad_image(loaded, data, centre)
        if image is None:
            return "empty", None
        predicted = int(loaded.engine.probabilities(provided_image(services.user_images(), loaded, image.id))
                        .argmax())
        preview = base64.b64encode(services.user_images().png(image.id)).decode()
        return f"{predicted} {image.id} {len(data['strokes'])}", f"data:image/png;base64,{preview}"

    yield app
    services.reset()


def draw(driver, canvas, strokes) -> None:
    """Draw ``strokes`` (canvas pixels of a 280 px pad) with mouse pointer events, one press per stroke."""
    for stroke in strokes:
        actions = ActionChains(driver)
        # from the canvas' centre: selenium versions disagree on where move_to_element_with_offset starts
        actions.move_to_element(canvas).move_by_offset(round(stroke[0][0]) - 140, round(stroke[0][1]) - 140)
        actions.click_and_hold()
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            actions.move_by_offset(round(x1) - round(x0), round(y1) - round(y0))
        actions.release().perform()


def test_drawing_a_seven_with_pointer_events_is_read_as_a_seven_and_undo_and_clear_resend(dash_duo, pad_app):
    dash_duo.start_server(pad_app)
    canvas = dash_duo.find_element(f"#{IDS.pad} canvas")
    assert canvas.size["width"] == 280
    assert dash_duo.driver.execute_script("return getComputedStyle(arguments[0]).touchAction", canvas) == "none"
    seven = place(7, 70, 40, 200)
    draw(dash_duo.driver, canvas, seven)
    until(lambda: dash_duo.find_element("#verdict").text.startswith("7 u:"), 15,
          msg=f"verdict: {dash_duo.find_element('#verdict').text!r}")
    draw(dash_duo.driver, canvas, [[[60, 150], [220, 150]]])  # a cross bar: two strokes now
    until(lambda: dash_duo.find_element("#verdict").text.endswith(" 2"), 10)
    dash_duo.find_element(f"#{IDS.undo}").click()
    until(lambda: dash_duo.find_element("#verdict").text.endswith(" 1"), 10)
    dash_duo.find_element(f"#{IDS.clear}").click()
    until(lambda: dash_duo.find_element("#verdict").text == "empty", 10)
    assert dash_duo.get_logs() == []
