"""Every page under the Content-Security-Policy in headless chromium: each renders, and nothing is refused.

Chromium reports a refusal twice: a ``securitypolicyviolation`` event (recorded here by a script DevTools runs
before each page's own) and a SEVERE console entry ("Refused to ...", read with ``dash_duo.get_logs()``).
"""

from __future__ import annotations

import requests
from dash.testing.wait import until

from tests.browser.helpers import wait_for_figure

PORT = 8057

RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', function (event) {
    window.cspViolations.push([event.effectiveDirective, event.blockedURI, event.sourceFile].join(' '));
});
"""
# Every thumbnail of the finder is a data: URI that the browser decoded (img-src allows data:).
THUMBNAILS_SHOWN = """
const images = Array.from(document.querySelectorAll('#' + arguments[0] + ' img'));
return images.length > 0 && images.every(img => img.src.startsWith('data:') && img.complete && img.naturalWidth > 0);
"""
INJECT_INLINE_SCRIPT = """
const script = document.createElement('script');
script.textContent = 'window.injectedScriptRan = true;';
document.body.appendChild(script);
return window.injectedScriptRan === true;
"""


def test_every_page_renders_under_the_content_security_policy_without_violations(dash_duo, app_state):
    from app.main import app
    from app.pages import classes, compare, explore, finder, train, why

    driver = dash_duo.driver
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_VIOLATIONS})
    dash_duo.start_server(app, port=PORT)
    policy = requests.get(f"{dash_duo.server_url}/finder", timeout=30).headers["Content-Security-Policy"]
    assert "script-src 'self' 'sha256-" in policy and "unsafe-eval" not in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]

    def violations():
        return driver.execute_script("return window.cspViolations")

    pages = [
        ("/?model=mnist-cnn&layer=Conv2D_1&image=3", lambda: wait_for_figure(
            dash_duo, explore.HEATMAP, lambda s: s["z"] is not None and "32 maps of image 3" in s["title"], 30)),
        ("/compare?model=mnist-cnn&layer=Conv2D_3&images=3,12,40", lambda: until(
            lambda: len(dash_duo.find_elements(f"[id*='{compare.GRID}'] .js-plotly-plot")) == 3, 20)),
        ("/finder?model=mnist-cnn", lambda: until(
            lambda: driver.execute_script(THUMBNAILS_SHOWN, finder.GALLERY), 20)),
        ("/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9", lambda: wait_for_figure(
            dash_duo, classes.DIFFERENCE, lambda s: s["z"] is not None, 20)),
        ("/why?model=mnist-cnn&image=663", lambda: wait_for_figure(
            dash_duo, why.DIFFERENCE, lambda s: s["z"] is not None, 20)),
        ("/train", lambda: dash_duo.wait_for_contains_text(f"#{train.STATUS}", "No training job yet", timeout=20)),
    ]
    for path, rendered in pages:
        dash_duo.wait_for_page(url=f"{dash_duo.server_url}{path}")
        rendered()
        dash_duo._wait_for_callbacks()
        assert violations() == [], path
        assert dash_duo.get_logs() == [], path
        assert driver.title.endswith("CNN Activation Explorer") and driver.title != "CNN Activation Explorer", path

    # The policy is enforced: a script written into the page is refused, and the refusal is seen.
    assert driver.execute_script(INJECT_INLINE_SCRIPT) is False
    until(lambda: any(v.startswith("script-src-elem inline") for v in violations()), 5)
