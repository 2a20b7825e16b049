"""The user's journey across pages in headless chromium: the place travels, Back and Forward move through views,
the compare basket keeps its order, bad input is announced, the keyboard steps images."""

from dash.testing.wait import until
from selenium.webdriver.common.keys import Keys

from tests.browser.helpers import wait_for_figure

PORT = 8173


def heatmap_title(dash_duo, graph_id):
    """The title of a figure, once drawn."""
    return wait_for_figure(dash_duo, graph_id, lambda s: s["z"] is not None)["title"]


def press(dash_duo, key):
    """A key pressed with the focus on the page's body (no text box)."""
    dash_duo.driver.execute_script("document.activeElement && document.activeElement.blur()")
    dash_duo.find_element("body").send_keys(key)


def test_explore_place_travels_to_compare_and_back_with_keyboard_and_bad_input(dash_duo, app_store):
    from app.main import app
    from app.pages import compare, explore

    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/?model=mnist-cnn&layer=Conv2D_3&image=252&cmap=jet")
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "128 maps of image 252" in s["title"])

    # ←/→ step images; Back and Forward move through those views
    press(dash_duo, Keys.ARROW_RIGHT)
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "of image 253" in s["title"])
    until(lambda: "image=253" in dash_duo.driver.current_url, 5)
    press(dash_duo, Keys.ARROW_LEFT)
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "of image 252" in s["title"])
    until(lambda: "image=252" in dash_duo.driver.current_url, 5)
    dash_duo.driver.back()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "of image 253" in s["title"])
    assert dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("value") == "253"
    dash_duo.driver.forward()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "of image 252" in s["title"])

    # −5 marks the box invalid and says the valid range
    box = dash_duo.find_element(f"#{explore.IMAGE}")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("-5")
    until(lambda: "is-invalid" in dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("class"), 5)
    until(lambda: "0-999" in dash_duo.find_element(f"#{explore.IDS.message}").text, 5)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys("252")
    until(lambda: "is-invalid" not in dash_duo.find_element(f"#{explore.IMAGE}").get_attribute("class"), 5)

    # Explore → Compare keeps layer, colormap and image
    dash_duo.find_element("a.nav-link[href^='/compare']").click()
    dash_duo.wait_for_element_by_css_selector(f"#{compare.CARDS} .js-plotly-plot", timeout=20)
    until(lambda: "images=252" in dash_duo.driver.current_url, 10)
    url = dash_duo.driver.current_url
    assert "layer=Conv2D_3" in url and "cmap=jet" in url
    assert "jet" in dash_duo.find_element(f"#{compare.CMAP}").text

    # Back returns to Explore's view
    dash_duo.driver.back()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "128 maps of image 252" in s["title"])
    assert dash_duo.get_logs() == []
