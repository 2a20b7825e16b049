"""Click "next image" on the explorer in headless chromium and time it until the heatmap is redrawn.

The page is served by gunicorn from ``--tree`` (see :mod:`serving`). For each layer the explorer is opened at
image 0; then, ``--clicks`` times, a script notes ``performance.now()`` and clicks the ▶ button, and the time is
read from Plotly's own ``plotly_afterplot`` event of the heatmap whose title names the next image. Clicks are
``PAUSE_S`` apart, a person's pace. Both times are the browser's clock: selenium's polling adds nothing.

Usage: ``python bench/browser.py [--tree DIR] [--layers Conv2D_1 Conv2D_3] [--clicks 20] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from serving import Server, served

ROOT = Path(__file__).resolve().parent.parent
PAUSE_S = 0.3
TIMEOUT_S = 20
HEATMAP, NEXT = "explore-heatmap", "explore-next"
# The heatmap's redraws, and when each answer of a callback with a figure (more than RENDER_BYTES) arrived: the
# click's time splits into the round trip (click to answer) and the browser's drawing (answer to redrawn).
RENDER_BYTES = 2000
LISTEN = f"""
const gd = document.querySelector('#{HEATMAP} .js-plotly-plot');
window.benchRedraws = [];
window.benchAnswers = [];
gd.on('plotly_afterplot', () => window.benchRedraws.push([performance.now(), gd._fullLayout.title.text]));
new PerformanceObserver(list => list.getEntries().forEach(entry => {{
    if (entry.name.includes('_dash-update-component') && entry.decodedBodySize > {RENDER_BYTES}) {{
        window.benchAnswers.push([entry.startTime, entry.responseEnd]);
    }}
}})).observe({{entryTypes: ['resource']}});
"""
ANSWERED = "return window.benchAnswers.filter(a => a[0] >= arguments[0]).map(a => a[1]);"
CLICK = f"const t = performance.now(); document.getElementById('{NEXT}').click(); return t;"
REDRAWN = "return window.benchRedraws.filter(r => r[0] > arguments[0] && r[1].endsWith(arguments[1]))" \
          ".map(r => r[0]);"
SHOWS_IMAGE = f"const gd = document.querySelector('#{HEATMAP} .js-plotly-plot'); " \
              "return !!(gd && gd._fullLayout && gd._fullLayout.title && gd.on " \
              "&& gd._fullLayout.title.text.endsWith(arguments[0]));"


def chromium():
    """Headless Debian chromium through chromedriver (both from Debian's packages)."""
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options)


def wait(driver, script: str, *args, timeout: float = TIMEOUT_S):
    """Poll ``script`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(0.005)
    raise TimeoutError(f"the page never got there: {script[:80]}")


def next_image_clicks(driver, server: Server, layer: str, clicks: int) -> tuple[list[float], list[float]]:
    """Milliseconds from each click of ▶ to the heatmap of the next image drawn, on ``layer``; and of each, the
    part from the click to the render's answer (the rest is the browser's drawing)."""
    driver.get(f"{server.url}/?model=mnist-cnn&layer={layer}&image=0")
    wait(driver, SHOWS_IMAGE, " image 0", timeout=60)
    driver.execute_script(LISTEN)
    times, answers = [], []
    for click in range(1, clicks + 1):
        time.sleep(PAUSE_S)
        started = driver.execute_script(CLICK)
        drawn = wait(driver, REDRAWN, started, f" image {click}")
        times.append(drawn[0] - started)
        answered = wait(driver, ANSWERED, started)  # resource entries are reported a moment after the fact
        answers.append(answered[0] - started)
    return times, answers


def measure(server: Server, layers: list[str], clicks: int) -> dict:
    """Per layer: the click times and their median and p90."""
    driver = chromium()
    try:
        result = {}
        for layer in layers:
            times, answers = next_image_clicks(driver, server, layer, clicks)
            ordered = sorted(times)
            result[layer] = {"median": statistics.median(times), "p90": ordered[int(0.9 * (len(times) - 1))],
                             "n": len(times), "ms": [round(t, 1) for t in times],
                             "answered_median": statistics.median(answers),
                             "drawing_median": statistics.median(t - a for t, a in zip(times, answers, strict=True))}
        return result
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--layers", nargs="+", default=["Conv2D_1", "Conv2D_3"])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with served(args.tree.resolve()) as server:
        result = measure(server, args.layers, args.clicks)
    for layer, row in result.items():
        print(f"{layer}: median {row['median']:.0f} ms, p90 {row['p90']:.0f} ms over {row['n']} clicks "
              f"(answer after {row['answered_median']:.0f} ms, drawn {row['drawing_median']:.0f} ms after it)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
