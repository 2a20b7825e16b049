"""The explorer's drawing pad in a real browser: a digit drawn with real pointer events (selenium actions) reaches
the server as vectors, is read as the digit drawn, becomes the view (grid, prediction, URL), and its link opened in
a second window shows the same digit; the attribution overlay shows where the model looks at it; Clear goes back
to the test image."""

from __future__ import annotations

from dash.testing.wait import until

from app.core.user_images import provided_image
from app.ui.training_form import FIELD
from tests.app_context import served_context
from tests.browser.helpers import choose_option, draw, figure_state, wait_for_figure
from tests.digit_strokes import place

PORT = 8059


def test_a_digit_drawn_on_the_explorer_becomes_the_view_and_its_link_reopens_it(dash_duo, app_state):
    from app.main import app
    from app.pages import explore

    pad = explore.PAD
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/?layer=Conv2D_1&image=3")
    dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", "Image 3:", timeout=30)
    before = figure_state(dash_duo, explore.HEATMAP)
    canvas = dash_duo.find_element(f"#{pad.pad} canvas")
    assert canvas.size["width"] == 280
    assert dash_duo.driver.execute_script("return getComputedStyle(arguments[0]).touchAction", canvas) == "none"

    draw(dash_duo.driver, canvas, place(7, 70, 40, 200))
    until(lambda: "predicted 7" in dash_duo.find_element(f"#{explore.IMAGE_INFO}").text, 20,
          msg=f"info: {dash_duo.find_element(f'#{explore.IMAGE_INFO}').text!r}")
    own = dash_duo.find_element(f"#{explore.IMAGE_INFO}").text.split(":")[1].split()[-1]
    assert f"image=u%3A{own}" in dash_duo.driver.current_url
    drawn = wait_for_figure(dash_duo, explore.HEATMAP, lambda state: "your image" in state["title"])
    assert drawn["z"] != before["z"]
    # the test-image box still holds 3, but says it is not what is shown
    assert dash_duo.find_element(f"#{explore.IMAGE_NOTE}").text.startswith("Your image is shown")
    assert "own-image-shown" in dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("class")
    engine = served_context().store.get("mnist-cnn").engine
    reference = provided_image(served_context().user_images, served_context().store.get("mnist-cnn"), f"u:{own}")
    assert int(engine.probabilities(reference).argmax()) == 7
    assert dash_duo.find_element(f"#{pad.preview}").get_attribute("src").endswith(f"/api/inputs/u:{own}/preview.png")

    # where the model looks at the drawn 7: the overlay appears for the predicted class
    assert not dash_duo.find_element(f"#{explore.ATTRIBUTION_CARD}").is_displayed()
    choose_option(dash_duo, f"#{explore.ATTRIBUTION_METHOD}", "Grad-CAM")
    overlay = wait_for_figure(dash_duo, explore.ATTRIBUTION, lambda state: "Grad-CAM" in (state["title"] or ""))
    assert overlay["title"] == "Grad-CAM · class 7 · your image"
    assert len(overlay["z"]) == 28 and len(overlay["z"][0]) == 28

    link = dash_duo.driver.current_url
    dash_duo.driver.switch_to.new_window("window")
    dash_duo.driver.get(link)
    dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", f"u:{own}", timeout=30)
    reopened = wait_for_figure(dash_duo, explore.HEATMAP, lambda state: f"u:{own}" in state["title"])
    assert reopened["z"] == drawn["z"]
    assert "predicted 7" in dash_duo.find_element(f"#{explore.IMAGE_INFO}").text
    # the link says of the test-image box what the page said, in a wide window and a narrow one
    for width in (1400, 800):
        dash_duo.driver.set_window_size(width, 1000)
        dash_duo.driver.get(link)
        dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", f"u:{own}", timeout=30)
        until(lambda: dash_duo.find_element(f"#{explore.IMAGE_NOTE}").text.startswith("Your image is shown"), 10,
              msg=f"no note on the test-image box at {width} px")
        assert "own-image-shown" in dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("class")
    # "watch it learn": the training page's form watches the drawn 7
    next(link for link in dash_duo.find_elements(f"#{explore.IMAGE_INFO} a") if link.text == "watch it learn").click()
    until(lambda: dash_duo.find_elements(f"#{FIELD['probe_image']}"), 20, msg="the training form")
    assert dash_duo.find_element(f"#{FIELD['probe_image']}").get_attribute("value") == f"u:{own}"

    dash_duo.driver.switch_to.window(dash_duo.driver.window_handles[0])
    clear = dash_duo.find_element(f"#{pad.clear}")
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'}); arguments[0].click();", clear)
    dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", "Image 3:", timeout=15)
    until(lambda: dash_duo.find_element(f"#{explore.IMAGE_NOTE}").text == "", 5)
    assert "own-image-shown" not in dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("class")
    assert dash_duo.get_logs() == []
