"""The navigation bar's "Copy link" button in headless chromium: it copies the address bar's URL, query included,
with the Clipboard API and without it (the fallback that selects the link in a text field)."""

from __future__ import annotations

from dash.testing.wait import until

from app.ui.copy_link import COPY_LINK, COPY_LINK_FEEDBACK, COPY_LINK_FIELD

PORT = 8058

READ_CLIPBOARD = """
const done = arguments[arguments.length - 1];
(window.savedClipboard || navigator.clipboard).readText().then(done, error => done('clipboard refused: ' + error));
"""
# What a page served over plain HTTP to another host sees: no Clipboard API. The test keeps it to read back.
REMOVE_CLIPBOARD_API = """
window.savedClipboard = navigator.clipboard;
Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined, configurable: true});
return window.savedClipboard.writeText('stale');
"""


def test_copy_link_copies_the_url_of_the_view_and_says_so(dash_duo, app_store):
    from app.main import app
    from app.pages import compare

    dash_duo.start_server(app, port=PORT)
    driver = dash_duo.driver
    driver.execute_cdp_cmd("Browser.grantPermissions", {
        "origin": dash_duo.server_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
    dash_duo.wait_for_page(url=f"{dash_duo.server_url}/compare?model=mnist-cnn&layer=Conv2D_3&images=3,12,40&cmap=jet")
    until(lambda: len(dash_duo.find_elements(f"[id*='{compare.GRID}'] .js-plotly-plot")) == 3, 20)
    # The page completes its query with the difference pair (first two images) once that is drawn.
    until(lambda: "&a=3&b=12" in driver.execute_script("return window.location.href"), 20)
    url = driver.execute_script("return window.location.href")
    assert "images=3,12,40" in url and "cmap=jet" in url

    dash_duo.find_element(f"#{COPY_LINK}").click()
    dash_duo.wait_for_text_to_equal(f"#{COPY_LINK_FEEDBACK}", "Link copied", timeout=5)
    assert dash_duo.find_element(f"#{COPY_LINK_FIELD}").get_attribute("value") == url
    assert driver.execute_async_script(READ_CLIPBOARD) == url
    dash_duo.wait_for_text_to_equal(f"#{COPY_LINK_FEEDBACK}", "", timeout=10)  # the feedback goes away

    driver.execute_script(REMOVE_CLIPBOARD_API)
    assert driver.execute_script("return navigator.clipboard") is None
    assert driver.execute_async_script(READ_CLIPBOARD) == "stale"
    dash_duo.find_element(f"#{COPY_LINK}").click()
    dash_duo.wait_for_text_to_equal(f"#{COPY_LINK_FEEDBACK}", "Link copied", timeout=5)  # selected and copied
    assert driver.execute_async_script(READ_CLIPBOARD) == url
    assert dash_duo.get_logs() == []
