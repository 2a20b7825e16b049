"""Compare's drawing pad in a real browser: a digit drawn with real pointer events (selenium actions) becomes a
new column beside the test images, with its prediction and a grid on the shared scale; the URL carries its u: id
and reopens the same columns; Clear takes the column away."""

from __future__ import annotations

from dash.testing.wait import until

from app.core.user_images import provided_image
from tests.app_context import served_context
from tests.browser.helpers import draw
from tests.digit_strokes import place

PORT = 8064


def card_texts(dash_duo) -> list[str]:
    """Each card's heading (read in one script: the cards are redrawn while the test reads them)."""
    from app.pages import compare  # imported once the app is: a page module registers itself with it

    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), el => el.innerText);",
        f"#{compare.CARDS} .card .small")


def test_a_digit_drawn_on_compare_becomes_a_column_and_the_link_keeps_it(dash_duo, app_state):
    from app.main import app
    from app.pages import compare

    pad = compare.PAD
    grids = f"[id*='{compare.GRID}'] .js-plotly-plot"
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/compare?model=mnist-cnn&layer=Conv2D_1&images=3,12")
    until(lambda: len(dash_duo.find_elements(grids)) == 2, 30, msg="the two test images' columns")

    summary = dash_duo.find_element("details summary")
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'}); arguments[0].click();", summary)
    canvas = dash_duo.find_element(f"#{pad.pad} canvas")
    until(lambda: canvas.is_displayed(), 5, msg="the pad opens")
    draw(dash_duo.driver, canvas, place(7, 70, 40, 200))

    until(lambda: len(dash_duo.find_elements(grids)) == 3, 20, msg="a third column")
    until(lambda: len(card_texts(dash_duo)) == 3 and "predicted 7" in card_texts(dash_duo)[2], 20,
          msg=f"cards: {card_texts(dash_duo)}")
    own_text = card_texts(dash_duo)[2]
    assert own_text.startswith("your image u:") and "true class" not in own_text
    own = own_text.split()[2]
    loaded = served_context().store.get("mnist-cnn")
    assert int(loaded.engine.probabilities(provided_image(served_context().user_images, loaded, own)).argmax()) == 7
    until(lambda: f"images=3,12,{own.replace(':', '%3A')}" in dash_duo.driver.current_url, 10,
          msg=f"URL: {dash_duo.driver.current_url}")
    assert dash_duo.find_element(f"#{pad.preview}").get_attribute("src").endswith(f"/api/inputs/{own}/preview.png")

    link = dash_duo.driver.current_url
    dash_duo.driver.switch_to.new_window("window")
    dash_duo.driver.get(link)
    until(lambda: len(card_texts(dash_duo)) == 3 and card_texts(dash_duo)[2] == own_text, 30,
          msg=f"reopened cards: {card_texts(dash_duo)}")

    dash_duo.driver.switch_to.window(dash_duo.driver.window_handles[0])
    clear = dash_duo.find_element(f"#{pad.clear}")
    dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', behavior: 'instant'}); arguments[0].click();", clear)
    until(lambda: len(dash_duo.find_elements(grids)) == 2, 15, msg="Clear takes the drawing's column away")
    assert dash_duo.find_element(f"#{compare.IMAGES}").get_attribute("value") == "3,12"
    assert dash_duo.get_logs() == []
