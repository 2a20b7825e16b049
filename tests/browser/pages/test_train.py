"""The training page in headless chromium: validation messages, a tiny run started from the form whose curves grow
in the starting window AND in a second window, the refusal of a second start, the banner cleared when the run
ends, "run again" filling the form, and the link to the explorer."""

from __future__ import annotations

import logging
import time

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.keys import Keys

from app.ui.training_form import FIELD, FORM_MESSAGE, PROBE_NOW, START, STOP
from tests.app_context import refresh_context, served_context

pytestmark = pytest.mark.slow

EPOCHS = 3
# one script reads the whole state: the page re-renders every second, so held element references go stale;
# arguments: the ids of the curves, the status badge and the status line
WINDOW_STATE = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
const badge = document.getElementById(arguments[1]);
const status = document.getElementById(arguments[2]);  // null while the page is still loading
return [gd && gd._fullData && gd._fullData[0] ? gd._fullData[0].x.length : -1, badge ? badge.textContent : '',
        status ? status.textContent : ''];
"""


# a recorder inside each window: every 100 ms, note when the number of points on the loss curve changes. Reading
# it at the end does not depend on how fast this test can switch between windows on a busy machine. Argument: the
# curves' id.
WATCH_CURVES = """
const curves = '#' + arguments[0] + ' .js-plotly-plot';
window.__curve = {counts: [], times: []};
setInterval(() => {
  const gd = document.querySelector(curves);
  const n = gd && gd._fullData && gd._fullData[0] ? gd._fullData[0].x.length : -1;
  const seen = window.__curve.counts;
  if (n >= 0 && seen[seen.length - 1] !== n) { seen.push(n); window.__curve.times.push(Date.now() / 1000); }
}, 100);
"""


def set_field(dash_duo, field_id: str, value) -> None:
    element = dash_duo.find_element(f"#{field_id}")
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(str(value))


def click(dash_duo, element_id: str, attempts: int = 5) -> None:
    """A DOM click: the form is taller than the headless window and the button may sit below its fold. The page
    polls every 0.5 s, so an element found may be replaced before the click reaches it: find it again."""
    for attempt in range(attempts):
        try:
            dash_duo.driver.execute_script("arguments[0].click();", dash_duo.find_element(f"#{element_id}"))
            return
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise


def window_state(driver) -> tuple[int, str, str]:
    """(points on the loss curve, status badge text, status line text) of the current window."""
    from app.pages import train  # imported once the app is: a page module registers itself with it

    points, badge, status_line = driver.execute_script(WINDOW_STATE, train.CURVES, train.BADGE, train.STATUS)
    return points, badge, status_line


@pytest.fixture
def train_app(app_state):
    from app.main import app

    yield app

    active = served_context().job_store.active()
    if active:  # never leave a training process behind a failed test
        served_context().job_store.request_stop(active.id)
    refresh_context()


def test_train_page_run_grows_curves_in_two_windows_and_links_the_model(dash_duo, train_app):
    from app.pages import explore, train

    dash_duo.start_server(train_app, port=8053)
    url = f"{dash_duo.server_url}/train"
    dash_duo.wait_for_page(url=url)
    assert dash_duo.find_element(f"#{FIELD['name']}").get_attribute("value") == "my-cnn"
    assert dash_duo.find_element(f"#{FIELD['filters']}").get_attribute("value") == "32, 64, 128"  # the blog's run

    # clear validation messages, nothing started
    set_field(dash_duo, FIELD["epochs"], 0)
    set_field(dash_duo, FIELD["filters"], "8, x")
    click(dash_duo, START)
    dash_duo.wait_for_contains_text(f"#{FORM_MESSAGE}", "Conv filters", timeout=5)
    set_field(dash_duo, FIELD["filters"], "8, 16")
    click(dash_duo, START)
    dash_duo.wait_for_contains_text(f"#{FORM_MESSAGE}", "epochs must be between 1 and 500", timeout=5)

    # a tiny run: the whole bundled subset through a small net, a few seconds per epoch
    set_field(dash_duo, FIELD["name"], "browser-run")
    set_field(dash_duo, FIELD["epochs"], EPOCHS)
    set_field(dash_duo, FIELD["dense_units"], "16")
    set_field(dash_duo, FIELD["max_train"], 2000)
    set_field(dash_duo, FIELD["max_test"], 100)
    set_field(dash_duo, FIELD["probe_image"], 5)
    click(dash_duo, START)
    dash_duo.wait_for_contains_text(f"#{FORM_MESSAGE}", "started", timeout=10)
    # before epoch 1 can end: the worker is still importing TF
    dash_duo.driver.execute_script(WATCH_CURVES, train.CURVES)
    dash_duo.wait_for_contains_text(f"#{train.STATUS}", "browser-run", timeout=5)
    click(dash_duo, START)  # a second start while one runs is refused, clearly
    dash_duo.wait_for_contains_text(f"#{FORM_MESSAGE}", "already running", timeout=5)
    # switch the running job's probe to another test image
    dash_duo.wait_for_element(f"#{PROBE_NOW}:not([disabled])", timeout=5)
    set_field(dash_duo, FIELD["probe_image"], 9)
    click(dash_duo, PROBE_NOW)
    dash_duo.wait_for_contains_text(f"#{FORM_MESSAGE}", "records test image 9", timeout=5)

    driver = dash_duo.driver
    first = driver.current_window_handle
    driver.switch_to.new_window("window")
    driver.get(url)
    second = driver.current_window_handle
    dash_duo.wait_for_element(f"#{train.CURVES}", timeout=10)
    driver.execute_script(WATCH_CURVES, train.CURVES)
    statuses: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while not all(statuses.get(handle) in ("succeeded", "failed") for handle in (first, second)):
        assert time.monotonic() < deadline, f"run did not finish; statuses {statuses}"
        for handle in (first, second):
            driver.switch_to.window(handle)
            _points, badge, line = window_state(driver)
            statuses[handle] = badge
            assert not badge or "browser-run" in line  # both windows show the same run
        time.sleep(0.25)
    assert statuses == {first: "succeeded", second: "succeeded"}
    driver.switch_to.window(first)
    # the banner about the run ("records test image 9") goes once the run has ended; its outcome is in the card
    dash_duo.wait_for_text_to_equal(f"#{FORM_MESSAGE}", "", timeout=5)
    assert "Settings of job" in dash_duo.find_element(f"#{train.SETTINGS}").text
    # run again: the form gets the finished job's settings, under a name not yet taken
    set_field(dash_duo, FIELD["dense_units"], "64")
    click(dash_duo, train.RERUN)
    dash_duo.wait_for_contains_text(f"#{train.RERUN_NOTE}", "'browser-run-2'", timeout=5)
    assert dash_duo.find_element(f"#{FIELD['name']}").get_attribute("value") == "browser-run-2"
    assert dash_duo.find_element(f"#{FIELD['dense_units']}").get_attribute("value") == "16"
    time.sleep(1.5)  # the last epoch's redraw


    job = served_context().job_store.current()
    recorded = {row["epoch"]: row["recorded_at"] for row in served_context().job_store.epochs(job.id)}
    for handle in (first, second):
        driver.switch_to.window(handle)
        curve = driver.execute_script("return window.__curve;")
        counts = curve["counts"]
        # the curves grew while the run went on, in BOTH windows, never backwards
        assert counts[-1] == EPOCHS and counts == sorted(counts), counts
        assert any(0 < n < EPOCHS for n in counts), f"window {handle} never showed a partial run: {counts}"
        # and every epoch's metrics reached the page soon after the epoch's end; two epochs that end
        # within one poll of each other may arrive together
        delays = [next(at for n, at in zip(counts, curve["times"], strict=True) if n >= epoch) - recorded[epoch]
                  for epoch in range(1, EPOCHS + 1)]
        logging.getLogger(__name__).info("window %s: points %s, delays %s", handle, counts,
                                         [round(d, 2) for d in delays])
        # live, not after the fact: each epoch reached the page while the run went on (typically 0.3-1.3 s after
        # it ended; on a CI machine running the training, the server and chromium on 2 cores up to ~2.7 s, so a
        # latency figure belongs in a benchmark, not in this pass/fail check)
        assert max(delays) <= 10.0, delays

    # the second window: probe grid of the last epoch, then the finished model opens on the explorer
    dash_duo.wait_for_contains_text(f"#{train.PROBE_INFO}", f"epoch {EPOCHS} of {EPOCHS}", timeout=5)
    probe_grid = f"#{train.PROBE_HEATMAP} .js-plotly-plot"
    heatmap_shape = driver.execute_script(
        "const gd = document.querySelector(arguments[0]);"
        "return gd._fullData[0].z.length;", probe_grid
    )
    assert heatmap_shape > 0
    assert dash_duo.find_element(f"#{STOP}").get_attribute("disabled") is not None
    assert dash_duo.find_element(f"#{PROBE_NOW}").get_attribute("disabled") is not None
    heatmap_title = driver.execute_script(
        "return document.querySelector(arguments[0])._fullLayout.title.text;", probe_grid
    )
    assert "test image 9" in heatmap_title
    click(dash_duo, train.EXPLORE_LINK)
    dash_duo.wait_for_contains_text(f"#{explore.IDS.model}", "browser-run", timeout=15)
    # let the explorer finish drawing before the server stops (else its in-flight callback dies mid-trace)
    dash_duo.wait_for_contains_text(f"#{explore.IMAGE_INFO}", "true class", timeout=15)
    assert dash_duo.get_logs() == []
