"""The user's journey across pages in headless chromium: the place travels, Back and Forward move through views,
the compare basket keeps its order, bad input is announced, the keyboard steps images, the chosen unit is in the URL
and its panel opens in view."""

from dash.testing.wait import until
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.keys import Keys

from app.core.classes import class_difference
from tests.app_context import served_context
from tests.browser.helpers import choose_option, open_from_navigation, wait_for_figure

PORT = 8173


def heatmap_title(dash_duo, graph_id):
    """The title of a figure, once drawn."""
    return wait_for_figure(dash_duo, graph_id, lambda s: s["z"] is not None)["title"]


def press(dash_duo, key):
    """A key pressed with the focus on the page's body (no text box)."""
    dash_duo.driver.execute_script("document.activeElement && document.activeElement.blur()")
    dash_duo.find_element("body").send_keys(key)


def mouse_click(dash_duo, element):
    """A real mouse click at the centre of ``element`` (plotly makes clickData only from its own mouse events)."""
    # "nearest" scrolls only when the element is out of the window (a late layout shift), else leaves the page be
    left, top = dash_duo.driver.execute_script(
        "arguments[0].scrollIntoView({block: 'nearest', inline: 'nearest', behavior: 'instant'});"
        "var r = arguments[0].getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2];", element)
    actions = ActionBuilder(dash_duo.driver)
    actions.pointer_action.move_to_location(int(left), int(top))
    actions.pointer_action.pause(0.3)  # let plotly compute the hover point the click reports
    actions.pointer_action.click()
    actions.perform()


def basket(dash_duo):
    """The image numbers in the navigation bar's basket, in its order."""
    return dash_duo.driver.execute_script(  # in one read: the bar is rebuilt as the basket changes
        "return Array.from(document.querySelectorAll('.basket-item'), item => Number(item.dataset.image));")


def first_thumbnail(dash_duo, finder):
    """The image number and the pick box of the finder's first thumbnail."""
    item = dash_duo.find_element(f"#{finder.GALLERY} [data-image]")
    return int(item.get_attribute("data-image")), item.find_element("css selector", "input[type='checkbox']")


def test_explore_place_travels_to_compare_and_back_with_keyboard_and_bad_input(dash_duo, app_store):
    from app.main import app
    from app.pages import compare, explore, finder

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
    open_from_navigation(dash_duo, "/compare")
    dash_duo.wait_for_element_by_css_selector(f"#{compare.CARDS} .js-plotly-plot", timeout=20)
    until(lambda: "images=252" in dash_duo.driver.current_url, 10)
    url = dash_duo.driver.current_url
    assert "layer=Conv2D_3" in url and "cmap=jet" in url
    assert "jet" in dash_duo.find_element(f"#{compare.CMAP}").text

    # Back returns to Explore's view
    dash_duo.driver.back()
    wait_for_figure(dash_duo, explore.HEATMAP, lambda s: "128 maps of image 252" in s["title"])

    # Find images: one pick among the 9s, a filter change to the 4s, a second pick; the basket keeps both in the
    # order picked (not in image order), and Back returns to the 9s
    open_from_navigation(dash_duo, "/finder")
    dash_duo.wait_for_element_by_css_selector(f"#{finder.GALLERY} [data-image]", timeout=20)
    choose_option(dash_duo, f"#{finder.TRUE_CLASS}", "9")
    until(lambda: "true=9" in dash_duo.driver.current_url, 10)
    dash_duo._wait_for_callbacks()
    nine, box = first_thumbnail(dash_duo, finder)
    assert loaded_label(nine) == 9
    box.click()
    until(lambda: basket(dash_duo) == [nine], 10)
    choose_option(dash_duo, f"#{finder.TRUE_CLASS}", "4")
    until(lambda: "true=4" in dash_duo.driver.current_url, 10)
    dash_duo._wait_for_callbacks()
    four, box = first_thumbnail(dash_duo, finder)
    assert loaded_label(four) == 4
    box.click()
    until(lambda: basket(dash_duo) == [nine, four], 10)
    assert "basket" not in dash_duo.driver.current_url  # the picks are yours: a copied link does not carry them
    dash_duo.driver.back()
    until(lambda: "true=9" in dash_duo.driver.current_url, 10)
    dash_duo.wait_for_contains_text(f"#{finder.TRUE_CLASS}", "9", timeout=10)
    assert basket(dash_duo) == [nine, four]
    # A colleague's link (even an old one naming a basket) opens its view and leaves the receiver's picks alone,
    # in a wide window and a narrow one.
    for width, height in ((1400, 1000), (800, 1000)):
        dash_duo.driver.set_window_size(width, height)
        dash_duo.driver.get(f"{dash_duo.server_url}/compare?model=mnist-cnn&images=3,5&basket=1,2")
        dash_duo.wait_for_element_by_css_selector(f"#{compare.CARDS} .js-plotly-plot", timeout=20)
        until(lambda: "basket" not in dash_duo.driver.current_url
              and "images=3,5" in dash_duo.driver.current_url, 10)
        assert basket(dash_duo) == [nine, four]
    assert dash_duo.get_logs() == []


def loaded_label(index):
    """The true class of a test image of the bundled model."""
    return int(served_context().store.get("mnist-cnn").labels[index])


def test_ranked_unit_opens_its_panel_in_view_and_the_unit_follows_layer_changes(dash_duo, app_store):
    from app.main import app
    from app.pages import classes

    loaded = served_context().store.get("mnist-cnn")
    top_unit = int(class_difference(served_context().statistics.class_means(loaded, "Conv2D_3"), 4, 9).ranking[0])
    dash_duo.start_server(app, port=PORT + 1)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9")
    wait_for_figure(dash_duo, classes.RANKING, lambda s: s["y"] is not None)
    dash_duo._wait_for_callbacks()

    # the ranking at the top of the window: the panel, which opens above it, would open out of sight
    ranking = dash_duo.find_element(f"#{classes.RANKING}")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'start', behavior: 'instant'})", ranking)
    mouse_click(dash_duo, dash_duo.find_elements(f"#{classes.RANKING} .bars .point path")[0])
    dash_duo.wait_for_contains_text(f"#{classes.UNIT_PANEL}", f"map {top_unit} of Conv2D_3", timeout=20)
    until(lambda: f"unit={top_unit}" in dash_duo.driver.current_url, 10)
    in_view = """var r = arguments[0].getBoundingClientRect();
                 return r.height > 0 && r.top >= 0 && r.top < window.innerHeight;"""
    until(lambda: dash_duo.driver.execute_script(in_view, dash_duo.find_element(".unit-panel")), 5,
          msg="the unit panel did not open in view")

    # a layer without that unit clears it; a link's unit survives a change to a layer that has it
    assert top_unit >= 32, "the check below needs a unit that Conv2D_1 (32 maps) lacks"
    dash_duo.driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")
    until(lambda: dash_duo.driver.execute_script("return window.scrollY") == 0, 5)  # Bootstrap scrolls smoothly
    choose_option(dash_duo, f"#{classes.LAYER}", "Conv2D_1 · 26×26×32")
    until(lambda: "layer=Conv2D_1" in dash_duo.driver.current_url, 10)
    until(lambda: "unit=" not in dash_duo.driver.current_url, 10)
    until(lambda: not dash_duo.find_elements(".unit-panel"), 10)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9&unit=7")
    dash_duo.wait_for_contains_text(f"#{classes.UNIT_PANEL}", "map 7 of Conv2D_3", timeout=20)
    choose_option(dash_duo, f"#{classes.LAYER}", "Conv2D_1 · 26×26×32")
    dash_duo.wait_for_contains_text(f"#{classes.UNIT_PANEL}", "map 7 of Conv2D_1", timeout=20)
    until(lambda: "layer=Conv2D_1" in dash_duo.driver.current_url and "unit=7" in dash_duo.driver.current_url, 10)
    assert dash_duo.get_logs() == []
