"""The explorer in headless chromium, timed on the browser's own clock (selenium's polling adds nothing to a time).

- **Clicks** (:func:`next_image_clicks`): for each layer the explorer is opened at image 0; then, ``--clicks``
  times, a script notes ``performance.now()`` and clicks ▶, and the time is read from Plotly's own
  ``plotly_afterplot`` event of the heatmap whose title names the next image. Clicks are ``PAUSE_S`` apart, a
  person's pace. Each time splits into the answer (the click until the view's answer was in the browser: the
  render callback's, or the explorer-view route's where the page steps with it, 0 when it was fetched ahead) and
  the drawing after it.
- **Key hold** (:func:`key_hold`): the explorer opened at image 0, then a script in the page dispatches ``keydown``
  ArrowRight on the document (where ``assets/explorer.js`` listens) every ``KEY_REPEAT_MS`` for ``HOLD_S``, as a
  held key repeats; every redraw of the heatmap is recorded with its title until the page has settled. Reported:
  distinct images drawn per second of the hold, the image the last key press asks for against the last one drawn,
  and the time from the last key press to that last redraw (a queue of steps shows as a long tail).
  :func:`key_holds` repeats it from images ``HOLD_STARTS`` apart (none of them viewed before on the server) and
  reports the median hold and the worst tail.
- **Page loads** (:func:`page_loads`): on a server already warm, the explorer navigated to at a new image each time
  (no view of it cached on the server), timed from navigation start to the grid of that image drawn.
- **First impression** (:func:`first_impression`): a tree started as ``make run`` starts it (``python -m app``),
  process start to ``/healthz`` 200, and to it saying ``"warm": true`` ("ready": the default model opened in the
  background; a tree without ``warm`` is ready when it answers), then ``/`` opened at once in a chromium started
  beforehand, timed from ready to the first page's grid drawn.

Page loads and the first impression see the grid drawn through :data:`FIRST_DRAW`, a script installed in every new
document before the page's own: every 5 ms it looks for the heatmap; it attaches a ``plotly_afterplot`` listener as
soon as Plotly has set the graph up, and also notes the first poll that finds the grid drawn (the title naming the
image and the heatmap's picture in the plot). The earlier of the two is the time: a plot drawn in the same task
that set it up fires its ``plotly_afterplot`` before a listener can be attached, and the poll then sees it at most
5 ms late.

Usage: ``python bench/browser.py [--tree DIR] [--layers Conv2D_1 Conv2D_3] [--clicks 20] [--page-loads 5]
[--holds 1] [--first-impression] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serving import HOST, MODEL, Server, fresh_state, load_test, served

ROOT = Path(__file__).resolve().parent.parent
PAUSE_S = 0.3
TIMEOUT_S = 20
OPEN_TIMEOUT_S = 60
HEATMAP, NEXT, IMAGE_BOX = "explore-heatmap", "explore-next", "explore-image"
HOLD_LAYER = "Conv2D_1"
HOLD_S = 3.0
# The image each repeated hold starts from: the first as the issue says, the others past the ~91 images a hold
# steps through, so no hold steps through views another one left cached on the server.
HOLD_STARTS = (0, 150, 300, 450)
KEY_REPEAT_MS = 33  # a typical key repeat rate: 30 a second
# After the hold the page has settled once nothing was redrawn for this long.
SETTLED_S = 1.5
SETTLE_TIMEOUT_S = 30
# The last key press's image drawn within about two frames of a view: nothing queued behind the key presses.
NO_QUEUE_MS = 250
PAGE_LOAD_LAYER = "Conv2D_1"
READY_POLL_S = 0.02
READY_TIMEOUT_S = 180
# The heatmap's redraws with their titles, and when each view's answer arrived: the render callback's (an answer of
# `_dash-update-component` larger than RENDER_BYTES, i.e. one with a figure) or the explorer-view route's (with the
# image it was for: a step's answer may have been fetched ahead, before the click).
RENDER_BYTES = 2000
LISTEN = f"""
const gd = document.querySelector('#{HEATMAP} .js-plotly-plot');
window.benchRedraws = [];
window.benchAnswers = [];
performance.setResourceTimingBufferSize(100000);
gd.on('plotly_afterplot', () => window.benchRedraws.push([performance.now(), gd._fullLayout.title.text]));
new PerformanceObserver(list => list.getEntries().forEach(entry => {{
    if (entry.name.includes('/explorer-view?')) {{
        const image = new URL(entry.name).searchParams.get('image');
        window.benchAnswers.push({{start: entry.startTime, end: entry.responseEnd, image: image}});
    }} else if (entry.name.includes('_dash-update-component') && entry.decodedBodySize > {RENDER_BYTES}) {{
        window.benchAnswers.push({{start: entry.startTime, end: entry.responseEnd, image: null}});
    }}
}})).observe({{entryTypes: ['resource']}});
"""
# [ms from the click to the answer (0 if it was there before the click), whether it was], or null while the
# answer's resource entry is not reported yet (entries come a moment after the fact).
ANSWERED = """
const [started, image, drawn] = arguments;
const route = window.benchAnswers.filter(a => a.image === String(image) && a.end > 0 && a.end <= drawn);
if (route.length) {
    const last = route[route.length - 1];
    return [Math.max(0, last.end - started), last.end < started];
}
const render = window.benchAnswers.filter(a => a.image === null && a.start >= started && a.end <= drawn);
return render.length ? [render[0].end - started, false] : null;
"""
CLICK = f"const t = performance.now(); document.getElementById('{NEXT}').click(); return t;"
REDRAWN = "return window.benchRedraws.filter(r => r[0] > arguments[0] && r[1].endsWith(arguments[1]))" \
          ".map(r => r[0]);"
SHOWS_IMAGE = f"const gd = document.querySelector('#{HEATMAP} .js-plotly-plot'); " \
              "return !!(gd && gd._fullLayout && gd._fullLayout.title && gd.on " \
              "&& gd._fullLayout.title.text.endsWith(arguments[0]));"
# A held key: one keydown every `every` ms for `hold` ms, each its own task. A press due while the page was busy is
# sent as soon as the page is free, as the system's queued key repeats are: none is lost, none is added.
HOLD_KEY = """
const [hold, every] = arguments;
window.benchKeys = [];
window.benchHoldDone = false;
const started = performance.now();
let due = started;
const press = () => {
    document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight', bubbles: true, cancelable: true,
                                                         repeat: window.benchKeys.length > 0}));
    window.benchKeys.push(performance.now());
    due += every;
    if (due < started + hold) {
        setTimeout(press, Math.max(0, due - performance.now()));
    } else {
        window.benchHoldDone = true;
    }
};
press();
return started;
"""
HOLD_STATE = f"""
return {{done: window.benchHoldDone, keys: window.benchKeys, redraws: window.benchRedraws, now: performance.now(),
         box: document.getElementById('{IMAGE_BOX}').value}};
"""
# Installed before the page's own scripts in every new document (see the module docstring). The image wanted is the
# page's `image` (0 without one); the timings of the page's own requests come with it, to show where the time went.
FIRST_DRAW = f"""
(() => {{
    const ending = ' image ' + (new URLSearchParams(location.search).get('image') || '0');
    window.benchFirstAfterplot = null;
    window.benchFirstSeen = null;
    const poll = setInterval(() => {{
        const gd = document.querySelector('#{HEATMAP} .js-plotly-plot');
        if (!gd) {{
            return;
        }}
        if (gd.on && !gd.benchListening) {{
            gd.benchListening = true;
            gd.on('plotly_afterplot', () => {{
                if (window.benchFirstAfterplot === null && gd._fullLayout.title.text.endsWith(ending)) {{
                    window.benchFirstAfterplot = performance.now();
                }}
            }});
        }}
        const title = gd._fullLayout && gd._fullLayout.title && gd._fullLayout.title.text;
        if (title && title.endsWith(ending) && gd.querySelector('.heatmaplayer image')) {{
            window.benchFirstSeen = performance.now();
            clearInterval(poll);
        }}
    }}, 5);
}})();
"""
# When the grid was drawn (ms from navigation start), and when the page's own requests that lead to it ended
# ([last part of the path, start ms, end ms, bytes]): where the time went.
FIRST_DRAWN = f"""
const times = [window.benchFirstAfterplot, window.benchFirstSeen].filter(t => t !== null && t !== undefined);
if (!times.length) {{
    return null;
}}
const navigation = performance.getEntriesByType('navigation')[0];
const milestone = e => ['/_dash-layout', '/_dash-dependencies', 'plotly.min.js', '/explorer-view']
    .some(part => e.name.includes(part))
    || (e.name.includes('_dash-update-component') && e.decodedBodySize > {RENDER_BYTES});
const requests = performance.getEntriesByType('resource').filter(milestone)
    .map(e => [new URL(e.name).pathname.split('/').pop(), Math.round(e.startTime), Math.round(e.responseEnd),
               e.decodedBodySize]);
return {{drawn_ms: Math.min(...times), afterplot_ms: window.benchFirstAfterplot, seen_ms: window.benchFirstSeen,
         html_ms: navigation.responseEnd, dom_content_loaded_ms: navigation.domContentLoadedEventEnd,
         load_ms: navigation.loadEventEnd, requests: requests}};
"""
TITLE_IMAGE = re.compile(r" image (\d+)$")


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


def wait(driver, script: str, *args, timeout: float = TIMEOUT_S, every_s: float = 0.005):
    """Poll ``script`` every ``every_s`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script, *args)
        if value:
            return value
        time.sleep(every_s)
    raise TimeoutError(f"the page never got there: {script[:80]}")


def p90(values: list[float]) -> float:
    """The 90th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[round(0.9 * (len(ordered) - 1))]


def open_explorer(driver, server: Server, layer: str, image: int = 0) -> None:
    """The explorer at (``layer``, ``image``), its grid drawn, with :data:`LISTEN` recording from then on."""
    driver.get(f"{server.url}/?model={MODEL}&layer={layer}&image={image}")
    wait(driver, SHOWS_IMAGE, f" image {image}", timeout=OPEN_TIMEOUT_S)
    driver.execute_script(LISTEN)


def next_image_clicks(driver, server: Server, layer: str, clicks: int) -> dict:
    """``clicks`` clicks of ▶ on ``layer`` from image 0: the milliseconds from each click to the heatmap of the next
    image drawn, and of each the part until the view's answer was in the browser (the rest is drawing)."""
    open_explorer(driver, server, layer)
    times, answers, fetched_ahead = [], [], 0
    for click in range(1, clicks + 1):
        time.sleep(PAUSE_S)
        started = driver.execute_script(CLICK)
        drawn = wait(driver, REDRAWN, started, f" image {click}")[0]
        times.append(drawn - started)
        answered, ahead = wait(driver, ANSWERED, started, click, drawn)
        answers.append(answered)
        fetched_ahead += ahead
    return {"median": statistics.median(times), "p90": p90(times), "n": len(times),
            "ms": [round(t, 1) for t in times], "answered_median": statistics.median(answers),
            "drawing_median": statistics.median(t - a for t, a in zip(times, answers, strict=True)),
            "answers_fetched_ahead": fetched_ahead}


def drawn_image(title: str) -> int | None:
    """The image number a heatmap's title names."""
    found = TITLE_IMAGE.search(title)
    return int(found.group(1)) if found else None


def key_hold(driver, server: Server, layer: str = HOLD_LAYER, start: int = 0, seconds: float = HOLD_S,
             every_ms: float = KEY_REPEAT_MS) -> dict:
    """→ held for ``seconds`` on ``layer`` from image ``start`` (see the module docstring); the page's redraws until
    it settled, summarised."""
    open_explorer(driver, server, layer, start)
    driver.execute_script(HOLD_KEY, seconds * 1000, every_ms)
    deadline = time.monotonic() + seconds + SETTLE_TIMEOUT_S
    while True:
        time.sleep(0.1)
        state = driver.execute_script(HOLD_STATE)
        last_event = max([state["keys"][-1], *(r[0] for r in state["redraws"])])
        if state["done"] and state["now"] - last_event >= SETTLED_S * 1000:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"the page still redrew {SETTLE_TIMEOUT_S} s after the key was let go")
    keys, redraws = state["keys"], [(t, drawn_image(title)) for t, title in state["redraws"]]
    first_key, last_key = keys[0], keys[-1]
    held_s = (last_key - first_key) / 1000
    # the start image was drawn before the hold: drawn again, it is no view the key reached
    drawn_while_held = {image for t, image in redraws if first_key <= t <= last_key and image != start}
    target = (start + len(keys)) % server.n_images  # each press asks for the next image
    last_time, last_image = redraws[-1] if redraws else (None, None)
    tail = last_time - last_key if last_time is not None else None
    gaps = [later - earlier for earlier, later in zip(keys, keys[1:], strict=False)]
    return {
        "layer": layer, "start_image": start, "presses": len(keys), "held_s": round(held_s, 3),
        # the page's thread busy past the next press delays it: the longest gap between presses shows how long
        "longest_press_gap_ms": round(max(gaps), 1) if gaps else None,
        "views_drawn": len(drawn_while_held), "views_per_s": len(drawn_while_held) / held_s,
        "redraws": len(redraws), "target_image": target, "image_box": state["box"], "last_drawn_image": last_image,
        "last_key_to_last_drawn_ms": tail,
        "no_queue": last_image == target and tail is not None and tail <= NO_QUEUE_MS,
        "drawn": [[round(t - first_key), image] for t, image in redraws],
    }


def key_holds(driver, server: Server, repeats: int, layer: str = HOLD_LAYER) -> dict:
    """:func:`key_hold` ``repeats`` times (from :data:`HOLD_STARTS`): the hold of median views drawn per second,
    with the worst tail of all (``last_key_to_last_drawn_ms``) and ``no_queue`` only if every hold had none."""
    holds = [key_hold(driver, server, layer, start) for start in HOLD_STARTS[:repeats]]
    median = sorted(holds, key=lambda hold: hold["views_per_s"])[len(holds) // 2]
    worst = max(holds, key=lambda hold: hold["last_key_to_last_drawn_ms"] or 0)
    return {**median, "views_per_s_each": [round(hold["views_per_s"], 2) for hold in holds],
            "last_key_to_last_drawn_ms": worst["last_key_to_last_drawn_ms"],
            "last_key_to_last_drawn_ms_each": [hold["last_key_to_last_drawn_ms"] for hold in holds],
            "no_queue": all(hold["no_queue"] for hold in holds), "holds": len(holds),
            "worst": {key: worst[key] for key in ("start_image", "target_image", "last_drawn_image", "image_box")}}


def first_drawn(driver, timeout: float = OPEN_TIMEOUT_S) -> dict:
    """What :data:`FIRST_DRAWN` reports once the page's grid is drawn (times from navigation start). The page
    times itself: polled seldom, so the polling takes little of the page's thread."""
    return wait(driver, FIRST_DRAWN, timeout=timeout, every_s=0.1)


def page_loads(driver, server: Server, images: list[int], layer: str = PAGE_LOAD_LAYER) -> dict:
    """The explorer loaded at each of ``images`` in turn: milliseconds from navigation start to its grid drawn."""
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FIRST_DRAW})
    loads = []
    for image in images:
        driver.get(f"{server.url}/?model={MODEL}&layer={layer}&image={image}")
        loads.append({"image": image, **first_drawn(driver)})
    times = [load["drawn_ms"] for load in loads]
    by_time = sorted(loads, key=lambda load: load["drawn_ms"])
    return {"median": statistics.median(times), "n": len(times), "ms": [round(t) for t in times], "images": images,
            "first": loads[0], "median_load": by_time[len(by_time) // 2]}


def page_load_images(server: Server, count: int) -> list[int]:
    """``count`` images far from those the clicks and the key hold view (the first hundred), and from each other
    (a view prefetches its neighbours)."""
    return [server.n_images // 2 + 37 * k for k in range(count)]


def first_impression(tree: Path) -> dict:
    """``tree`` started as ``make run`` starts it, on a copy of its model store and a fresh state folder: seconds
    from process start to ``/healthz`` 200 and from then to the first page's grid drawn in a chromium started
    before the server (its start-up reported, not counted)."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-first-"))
    started = time.monotonic()
    driver = chromium()
    process = None
    try:
        driver.get("about:blank")
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": FIRST_DRAW})
        chromium_s = time.monotonic() - started
        env = fresh_state(tree, scratch / "model_store", scratch / "state")
        port = load_test.smoke_run.free_port()
        env.update(HOST=HOST, PORT=str(port))
        with open(scratch / "server.log", "wb") as output:
            started = time.monotonic()
            process = subprocess.Popen([sys.executable, "-m", "app"], cwd=tree, env=env, stdin=subprocess.DEVNULL,
                                       stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        answered, ready = wait_ready(port, process)
        navigating = time.monotonic()
        driver.get(f"http://{HOST}:{port}/")
        drawn = first_drawn(driver)
        return {"command": "python -m app", "process_to_answer_s": answered - started,
                "process_to_ready_s": ready - started, "chromium_start_s": chromium_s,
                "ready_to_drawn_s": navigating - ready + drawn["drawn_ms"] / 1000, **drawn}
    except BaseException:
        log = scratch / "server.log"
        if log.exists():
            print(*log.read_text(errors="replace").splitlines()[-30:], sep="\n", file=sys.stderr)
        raise
    finally:
        driver.quit()
        if process is not None:
            load_test.smoke_run.stop(process)
        shutil.rmtree(scratch, ignore_errors=True)


def wait_ready(port: int, process: subprocess.Popen) -> tuple[float, float]:
    """``time.monotonic()`` when ``/healthz`` first answered 200, and when it first said ``"warm": true`` (the
    default model open; a tree whose ``/healthz`` has no ``warm`` is ready when it answers), polled every
    :data:`READY_POLL_S`."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    answered = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"python -m app exited with code {process.returncode} before answering")
        try:
            status, body = load_test.request(port, "GET", "/healthz", timeout=5)
        except OSError:
            status, body = None, b""
        if status == 200:
            answered = answered or time.monotonic()
            if json.loads(body).get("warm", True):
                return answered, time.monotonic()
        time.sleep(READY_POLL_S)
    raise TimeoutError(f"/healthz did not answer 200 with the default model open within {READY_TIMEOUT_S} s")


def measure(server: Server, layers: list[str], clicks: int, page_load_count: int = 5, holds: int = 1) -> dict:
    """On one chromium: the page loads (first, while no view is cached on the server), the clicks per layer, then
    ``holds`` key holds."""
    driver = chromium()
    try:
        result: dict = {}
        if page_load_count:
            result["page_loads"] = page_loads(driver, server, page_load_images(server, page_load_count))
        result["clicks"] = {layer: next_image_clicks(driver, server, layer, clicks) for layer in layers}
        if holds:
            result["hold"] = key_holds(driver, server, holds)
        return result
    finally:
        driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--layers", nargs="+", default=["Conv2D_1", "Conv2D_3"])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--page-loads", type=int, default=5)
    parser.add_argument("--holds", type=int, default=1, choices=range(len(HOLD_STARTS) + 1),
                        help="key holds (0: none)")
    parser.add_argument("--first-impression", action="store_true", help="also start the tree as `make run` does")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    tree = args.tree.resolve()
    with served(tree) as server:
        result = measure(server, args.layers, args.clicks, args.page_loads, args.holds)
    if args.first_impression:
        result["first_impression"] = first_impression(tree)
    for layer, row in result["clicks"].items():
        print(f"{layer}: median {row['median']:.0f} ms, p90 {row['p90']:.0f} ms over {row['n']} clicks "
              f"(answer after {row['answered_median']:.0f} ms, drawn {row['drawing_median']:.0f} ms after it; "
              f"{row['answers_fetched_ahead']} answers fetched ahead)")
    if "hold" in result:
        hold = result["hold"]
        print(f"→ held {hold['held_s']:.2f} s on {hold['layer']} (median of {hold['holds']}): {hold['presses']} "
              f"presses, {hold['views_drawn']} images drawn ({hold['views_per_s']:.1f}/s; each "
              f"{hold['views_per_s_each']}); worst tail {hold['last_key_to_last_drawn_ms']:.0f} ms after the last "
              f"press ({hold['worst']}); no queue build-up: {hold['no_queue']}")
    if "page_loads" in result:
        print(f"page load → grid drawn: median {result['page_loads']['median']:.0f} ms "
              f"({result['page_loads']['ms']} ms)")
    if "first_impression" in result:
        first = result["first_impression"]
        print(f"python -m app: ready after {first['process_to_ready_s']:.1f} s, first grid drawn "
              f"{first['ready_to_drawn_s']:.2f} s later (chromium started in {first['chromium_start_s']:.1f} s)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
