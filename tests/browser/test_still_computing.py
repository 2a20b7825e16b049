"""A statistic too costly for a request, in headless chromium: the Classes page says a background job computes the
class means and how far it is, then shows them by itself when the job is done (no reload); the poll then stops.

Run: ``.venv/bin/python -m pytest tests/browser/test_still_computing.py --headless``.
"""

from __future__ import annotations

import time

from dash.testing.wait import until

from tests.browser.helpers import wait_for_figure

PORT = 8232
JOB_SECONDS = 120  # a fresh interpreter importing TensorFlow on a busy machine, then one pass over 1,000 digits
ANSWERS = "return performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-update')).length"


def test_classes_shows_the_jobs_progress_then_the_means_without_a_reload(dash_duo, app_state):
    from app.main import app
    from app.pages import classes
    from tests.app_context import served_context

    served_context().statistics.in_request_flops = 0  # every pass over the test set runs as a job
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.start_server(app, port=PORT)
    dash_duo.wait_for_page(f"{dash_duo.server_url}/classes?model=mnist-cnn&layer=Dense_1&a=4&b=9")
    dash_duo.wait_for_contains_text(
        f"#{classes.IDS.message}", "Computing the class means of Dense_1 over 1,000 test images in the background",
        timeout=30)
    assert dash_duo.find_element(".still-computing").is_displayed()
    # meanwhile each chart says what will fill it, rather than showing empty axes
    until(lambda: "class A fills in" in " ".join(dash_duo.find_element(f"#{classes.MEAN_A}").text.split()), 10,
          msg="the mean's chart said nothing while the job ran")
    assert "differ most fill in" in " ".join(dash_duo.find_element(f"#{classes.RANKING}").text.split())
    page_loads = dash_duo.driver.execute_script("return performance.getEntriesByType('navigation').length")

    mean_four = wait_for_figure(dash_duo, classes.MEAN_A, lambda state: bool(state["title"]), JOB_SECONDS)
    assert mean_four["title"] == "mean of class 4 · Dense_1"
    until(lambda: not dash_duo.find_elements(".still-computing"), 10, msg="the progress note outlived the result")
    assert dash_duo.driver.execute_script("return performance.getEntriesByType('navigation').length") == page_loads
    # with nothing left to wait for, the page stops asking
    asked = dash_duo.driver.execute_script(ANSWERS)
    time.sleep(5)
    assert dash_duo.driver.execute_script(ANSWERS) == asked
    assert dash_duo.get_logs() == []
