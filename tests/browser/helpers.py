"""Reading Plotly figures out of the browser in dash_duo tests, and drawing on a drawing pad."""

import json

from dash.testing.wait import until
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException
from selenium.webdriver.common.action_chains import ActionChains

FULL_DATA = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData || !gd._fullData.length) { return null; }
const trace = gd._fullData[arguments[1] || 0];
const z = trace.z ? Array.from(trace.z, row => Array.from(row)) : null;
const y = trace.y ? Array.from(trace.y) : null;
return JSON.stringify({z: z, y: y, zmin: trace.zmin, zmax: trace.zmax, colorscale: trace.colorscale,
                       title: gd._fullLayout.title.text});
"""


def figure_state(dash_duo, graph_id: str, trace: int = 0) -> dict | None:
    """The decoded first trace of a dcc.Graph (z, y, zmin, zmax, colorscale) and the figure title."""
    raw = dash_duo.driver.execute_script(FULL_DATA, graph_id, trace)
    return json.loads(raw) if raw else None


def wait_for_figure(dash_duo, graph_id: str, predicate, timeout: float = 10) -> dict:
    """Wait until the figure of ``graph_id`` satisfies ``predicate`` and return its state."""
    state = {}

    def check():
        state["value"] = figure_state(dash_duo, graph_id)
        return state["value"] is not None and predicate(state["value"])

    until(check, timeout, msg=f"{graph_id} never reached the expected state; last: {str(state.get('value'))[:300]}")
    return state["value"]


def grid_shape(state: dict) -> tuple[int, int]:
    """Rows and columns of a heatmap's z."""
    return len(state["z"]), len(state["z"][0])


def choose_option(dash_duo, dropdown_selector: str, text: str) -> None:
    """Pick an option of a dcc.Dropdown by typing into its search box, then clicking the one match.

    Typing first keeps the option at the top of the list: clicking in a long scrolled list can land on the
    search box instead (selenium's "element click intercepted").
    """
    dropdown = dash_duo.find_element(dropdown_selector)
    # Bootstrap makes scrolling smooth: a click computed while the page still moves lands beside its target
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", dropdown)
    dropdown.click()
    search = dash_duo.find_element(".dash-dropdown-search")
    search.send_keys(text)
    until(
        lambda: any(option.text == text for option in dash_duo.find_elements(".dash-dropdown-option")),
        5,
        msg=f"no option {text!r} in {dropdown_selector}",
    )
    next(option for option in dash_duo.find_elements(".dash-dropdown-option") if option.text == text).click()


def open_from_navigation(dash_duo, path: str) -> None:
    """Click the navigation bar's link to ``path``, as a person does after scrolling back to the top.

    The scroll is instant: Bootstrap makes ``window.scrollTo`` smooth, and a click computed while the page still
    moves lands above the window (selenium's "element click intercepted ... at point (606, -92)"). A unit panel
    opened just before scrolls itself into view once drawn, so the click is retried until the link stays put.
    """
    link_selector = f"a.nav-link[href^='{path}']"

    def click():
        dash_duo.driver.execute_script("window.scrollTo({top: 0, behavior: 'instant'});")
        try:
            dash_duo.find_element(link_selector).click()
        except (ElementClickInterceptedException, StaleElementReferenceException):
            return False
        return True

    until(click, 10, msg=f"the navigation link to {path} never took a click")


def draw(driver, canvas, strokes) -> None:
    """Draw ``strokes`` (canvas pixels of a 280 px pad) with mouse pointer events, one press per stroke."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", canvas)
    for stroke in strokes:
        actions = ActionChains(driver)
        # from the canvas' centre: selenium versions disagree on where move_to_element_with_offset starts
        actions.move_to_element(canvas).move_by_offset(round(stroke[0][0]) - 140, round(stroke[0][1]) - 140)
        actions.click_and_hold()
        for (x0, y0), (x1, y1) in zip(stroke, stroke[1:], strict=False):
            actions.move_by_offset(round(x1) - round(x0), round(y1) - round(y0))
        actions.release().perform()


# Where grid cell (x, y) of a heatmap is on the screen, in px.
CELL_CENTRE = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
return [box.left + xa._offset + xa.c2p(arguments[1]), box.top + ya._offset + ya.c2p(arguments[2])];
"""
# The grid's hover label (assets/grid_hover.js), or null while hidden.
HOVER_LABEL = """
const l = document.querySelector('.grid-hover');
return l && l.style.display !== 'none' ? l.textContent : null;
"""


def exact_hover_label(dash_duo, graph_id: str, x: int, y: int, starts: str = "", timeout: float = 20) -> str:
    """The hover label of grid cell (x, y) of ``graph_id`` once it shows the exact value (no "≈", the grid route
    read) and starts with ``starts``: the grid scrolled to the top of the window, the pointer moved there."""
    dash_duo.driver.execute_script(
        "document.getElementById(arguments[0]).scrollIntoView({block: 'start', behavior: 'instant'});", graph_id)
    label = {}

    def hovered():
        at = dash_duo.driver.execute_script(CELL_CENTRE, graph_id, x, y)
        for x_px, y_px in ((0, 0), at):
            dash_duo.driver.execute_cdp_cmd("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x_px, "y": y_px})
        label["text"] = dash_duo.driver.execute_script(HOVER_LABEL)
        return bool(label["text"]) and label["text"].startswith(starts) and "≈" not in label["text"]

    until(hovered, timeout, msg=f"no exact hover label at cell ({x}, {y}) of {graph_id}: {label}")
    return label["text"]
