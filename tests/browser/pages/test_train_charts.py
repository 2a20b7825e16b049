"""The training page's learning-rate chart and progress line in headless chromium, read off a run recorded in the
job store (no training): after epoch 1 the rate reads as 0.001 on its axis, not as 0 on a -1…1 one, and the line
under the progress bar says "1 epoch recorded".

Run: ``.venv/bin/python -m pytest tests/browser/pages/test_train_charts.py --headless``.
"""

from __future__ import annotations

import json
import os

from dash.testing.wait import until

from app.core.training import parse_config
from tests.app_context import served_context

PORT = 8186
RATE = 0.001
WINDOWS = ((1400, 1000), (800, 1000))

# The rate chart as drawn: its points, its y axis' range and the tick labels a reader sees. Argument: the graph's id.
RATE_CHART = """
const gd = document.querySelector('#' + arguments[0] + ' .js-plotly-plot');
if (!gd || !gd._fullData || !gd._fullData.length) { return null; }
return JSON.stringify({y: Array.from(gd._fullData[0].y || []), range: gd._fullLayout.yaxis.range,
                       ticks: Array.from(gd.querySelectorAll('.ytick text'), t => t.textContent)});
"""


def metrics(epoch: int, rate: float) -> dict:
    return {"epoch": epoch, "loss": 0.5 / epoch, "val_loss": 0.6 / epoch, "accuracy": 0.8, "val_accuracy": 0.78,
            "learning_rate": rate}


def test_after_epoch_1_the_rate_reads_on_its_own_scale_and_one_epoch_is_recorded(dash_duo, app_state):
    from app.main import app
    from app.pages import train

    jobs = served_context().job_store
    job = jobs.create(parse_config({"name": "rate-run", "epochs": 3}).to_dict())
    assert jobs.claim(job.id, os.getpid())
    jobs.update(job.id, info={"class_names": list("0123456789")}, epochs_total=3, batches_per_epoch=8, epoch=2,
                batch=1)
    jobs.add_epoch(job.id, metrics(1, RATE))
    try:
        dash_duo.start_server(app, port=PORT)
        chart = {}

        def drawn(points: int) -> bool:
            raw = dash_duo.driver.execute_script(RATE_CHART, train.LEARNING_RATE)
            chart.update(json.loads(raw) if raw else {})
            return len(chart.get("y", [])) == points and bool(chart.get("ticks"))

        for width, height in WINDOWS:
            dash_duo.driver.set_window_size(width, height)
            dash_duo.wait_for_page(url=f"{dash_duo.server_url}/train?job={job.id}")
            dash_duo.wait_for_contains_text(f"#{train.PROGRESS_TEXT}", "recorded", timeout=20)
            assert " · 1 epoch recorded" in dash_duo.find_element(f"#{train.PROGRESS_TEXT}").text
            chart.clear()
            until(lambda: drawn(1), 10, msg=f"no rate chart with one point at {width} px: {chart}")
            low, high = chart["range"]
            assert low < RATE < high and low > 0, chart  # around the rate, not around 0
            assert high - low < RATE * 2, chart  # on the rate's scale: 0.001 is not squeezed against 0
            ticks = [float(text.replace("−", "-")) for text in chart["ticks"]]
            assert min(ticks) > 0 and any(abs(tick - RATE) < 1e-12 for tick in ticks), chart  # a tick reads 0.001

        # a schedule lowers the rate: the axis spans both rates, no longer the constant rate's range
        jobs.add_epoch(job.id, metrics(2, RATE / 2))
        until(lambda: drawn(2), 10, msg=f"the second epoch never reached the chart: {chart}")
        low, high = chart["range"]
        assert low < RATE / 2 and high > RATE and low > -RATE, chart
        dash_duo.wait_for_contains_text(f"#{train.PROGRESS_TEXT}", " · 2 epochs recorded", timeout=5)
        assert dash_duo.get_logs() == []
    finally:
        jobs.finish(job.id, "stopped")
