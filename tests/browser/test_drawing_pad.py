"""The explorer's drawing pad in a real browser: a digit drawn with real pointer events (selenium actions) reaches
the server as vectors, is read as the digit drawn, becomes the view (grid, prediction, URL), and its link opened in
a second window shows the same digit; the attribution overlay shows where the model looks at it; Clear goes back
to the test image."""

from __future__ import annotations

from dash.testing.wait import until

from app import services
from app.core.user_images import provided_image
from app.ui.drawing_pad import drawing_pad_ids
from tests.browser.helpers import choose_option, draw, figure_state, wait_for_figure
from tests.digit_strokes import place

IDS = drawing_pad_ids("explore")
PORT = 8059


def test_a_digit_drawn_on_the_explorer_becomes_the_view_and_its_link_reopens_it(dash_duo, app_state):
    from app.main import app

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?layer=Conv2D_1&image=3")
    dash_duo.wait_for_contains_text("#explore-image-info", "Image 3:", timeout=30)
    before = figure_state(dash_duo, "explore-heatmap")
    canvas = dash_duo.find_element(f"#{IDS.pad} canvas")
    assert canvas.size["width"] == 280
    assert dash_duo.driver.execute_script("return getComputedStyle(arguments[0]).touchAction", canvas) == "none"

    draw(dash_duo.driver, canvas, place(7, 70, 40, 200))
    until(lambda: "predicted 7" in dash_duo.find_element("#explore-image-info").text, 20,
          msg=f"info: {dash_duo.find_element('#explore-image-info').text!r}")
    own = dash_duo.find_element("#explore-image-info").text.split(":")[1].split()[-1]
    assert f"image=u%3A{own}" in dash_duo.driver.current_url
    drawn = wait_for_figure(dash_duo, "explore-heatmap", lambda state: "your image" in state["title"])
    assert drawn["z"] != before["z"]
    engine = services.store().get("mnist-cnn").engine
    reference = provided_image(services.user_images(), services.store().get("mnist-cnn"), f"u:{own}")
    assert int(engine.probabilities(reference).argmax()) == 7
    assert dash_duo.find_element(f"#{IDS.preview}").get_attribute("src").endswith(f"/api/inputs/u:{own}/preview.png")

    # where the model looks at the drawn 7: the overlay appears for the predicted class
    assert not dash_duo.find_element("#explore-attribution-card").is_displayed()
    choose_option(dash_duo, "#explore-attribution-method", "Grad-CAM")
    overlay = wait_for_figure(dash_duo, "explore-attribution", lambda state: "Grad-CAM" in (state["title"] or ""))
    assert overlay["title"] == "Grad-CAM · class 7 · your image"
    assert len(overlay["z"]) == 28 and len(overlay["z"][0]) == 28

    link = dash_duo.driver.current_url
    dash_duo.driver.switch_to.new_window("window")
    dash_duo.driver.get(link)
    dash_duo.wait_for_contains_text("#explore-image-info", f"u:{own}", timeout=30)
    reopened = wait_for_figure(dash_duo, "explore-heatmap", lambda state: f"u:{own}" in state["title"])
    assert reopened["z"] == drawn["z"]
    assert "predicted 7" in dash_duo.find_element("#explore-image-info").text
    # "watch it learn": the training page's form watches the drawn 7
    dash_duo.find_element("#explore-image-info a").click()
    until(lambda: dash_duo.find_elements("#train-probe-image"), 20, msg="the training form")
    assert dash_duo.find_element("#train-probe-image").get_attribute("value") == f"u:{own}"

    dash_duo.driver.switch_to.window(dash_duo.driver.window_handles[0])
    clear = dash_duo.find_element(f"#{IDS.clear}")
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'}); arguments[0].click();", clear)
    dash_duo.wait_for_contains_text("#explore-image-info", "Image 3:", timeout=15)
    assert dash_duo.get_logs() == []
