"""Every page at 800 x 900 (a small laptop window or a tablet): no horizontal scrolling, no cut dropdown text.

Run: ``.venv/bin/python -m pytest tests/browser/test_small_screens.py --headless``.
"""

from __future__ import annotations

import time

PORT = 8067
PAGES = ("/", "/compare", "/finder", "/classes", "/train")

DRAWN = """
const graphs = Array.from(document.querySelectorAll('.dash-graph'));
return graphs.length > 0 && graphs.every(g => g.querySelector('.main-svg'));
"""

# The page's width against the window's, and what sticks out (for a useful failure message).
OVERFLOW = """
const width = window.innerWidth;
const wide = Array.from(document.querySelectorAll('body *'))
    .filter(el => el.getBoundingClientRect().right > width + 1 && el.getClientRects().length)
    .slice(0, 5).map(el => el.tagName + '#' + el.id + '.' + String(el.className).slice(0, 60));
return {scroll: document.documentElement.scrollWidth, inner: width, wide: wide};
"""

# Dropdowns whose shown value is cut (its text is wider than its box).
CUT_DROPDOWNS = """
return Array.from(document.querySelectorAll('.dash-dropdown-value, .dash-dropdown-trigger span'))
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => el.textContent);
"""


def test_every_page_fits_800_px_without_horizontal_scrolling(dash_duo, app_store):
    from app.main import app

    dash_duo.start_server(app, port=PORT)
    dash_duo.driver.set_window_size(800, 900)
    problems = {}
    for path in PAGES:
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}{path}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not dash_duo.driver.execute_script(DRAWN):
            time.sleep(0.2)
        dash_duo._wait_for_callbacks()
        found = dash_duo.driver.execute_script(OVERFLOW)
        assert found["inner"] <= 800
        cut = dash_duo.driver.execute_script(CUT_DROPDOWNS)
        if found["scroll"] > found["inner"] or cut:
            problems[path] = {"overflow": found, "cut dropdown text": cut}
    assert problems == {}
    assert dash_duo.get_logs() == []
