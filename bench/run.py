"""``make bench``: every benchmark of the project in one run, each figure next to its same-run baseline, as one table
(figure, ours, baseline, ratio, target, hit/miss) printed and written to ``BENCHMARKS.md``.

Baselines, all measured in this run on this machine:

- the explorer's figures (click to redraw, key hold, page loads, first page of a fresh ``make run``, bytes,
  views/s, server CPU per view, server view, worker memory, class means): the same measurement on the project as it
  was before this work (``--baseline``, a git revision extracted with ``git archive`` into a temporary folder,
  served as its own ``make serve`` served it, 2 workers x 4 threads, and started as its ``make run`` started it);
  each side's load sends what one view costs in its own design (:func:`serving.view_request`);
- the plain traced probe (what the baseline ran) for the forward pass of one image, both in this tree's
  ``bench/forward_pass.py``;
- the blog's per-view approach (load + sub-model + predict + tile) for the speed-up;
- a plain ``model.fit`` for the training job path and the Fashion-MNIST epoch.

``--quick`` (``make bench QUICK=1``) runs fewer repetitions and skips the Fashion-MNIST epoch: under 4 minutes,
the same table. Both trees are named by commit in the report and its raw results, never by folder. Shared
machines are noisy: medians and p95 over many repetitions, ratios against the same run.
Usage: ``python bench/run.py [--quick] [--baseline REV] [--out BENCHMARKS.md] [--json PATH] [--note TEXT]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import browser  # noqa: E402
import load  # noqa: E402
from serving import served, view_request_name  # noqa: E402

# The design before the explorer stepped images in the browser (470aa1a, 2026-12-07): every ◀ ▶ step is the
# explorer's Dash render callback (POST /_dash-update-component) redrawn by Dash's renderer, and the probe is the
# traced graph without XLA.
DEFAULT_BASELINE = "470aa1a5542ba58118eb3e10cc28acdfbc841d1d"
BASELINE_SERVE = {"workers": 2, "threads": 4}  # its `make serve`


@dataclass
class Settings:
    """Repetitions of each measurement."""

    views: int
    blog_views: int
    clicks: int
    load_seconds: float
    class_repeats: int
    rounds: int
    epochs: int
    hook_repeats: int
    page_loads: int
    holds: int
    forward_calls: int
    fashion: bool


FULL = Settings(views=60, blog_views=8, clicks=20, load_seconds=20, class_repeats=3, rounds=3, epochs=2,
                hook_repeats=200, page_loads=5, holds=3, forward_calls=300, fashion=True)
QUICK = Settings(views=15, blog_views=2, clicks=6, load_seconds=4, class_repeats=1, rounds=1, epochs=1,
                 hook_repeats=20, page_loads=5, holds=1, forward_calls=100, fashion=False)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def extract(revision: str, into: Path) -> Path:
    """The files of ``revision`` of this repository in ``into`` (no .git, no venv: the same interpreter runs it)."""
    into.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def python_json(arguments: list[str], cwd: Path, scratch: Path, name: str) -> dict:
    """Run ``python ARGUMENTS --json FILE`` in ``cwd`` and return what it wrote."""
    out = scratch / f"{name}.json"
    subprocess.run([sys.executable, *arguments, "--json", str(out)], cwd=cwd, check=True,
                   stdout=sys.stderr, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return json.loads(out.read_text())


CLASS_MEANS = (
    "import json, sys; sys.path.insert(0, '.'); from bench.class_stats import time_mnist; "
    "open(sys.argv[2], 'w').write(json.dumps(time_mnist(repeats=int(sys.argv[1]))))"
)


def class_means(tree: Path, repeats: int, scratch: Path, name: str) -> list[dict]:
    """bench/class_stats.py's cold and cached class means of every mnist-cnn layer, as ``tree``'s code computes them."""
    out = scratch / f"{name}.json"
    subprocess.run([sys.executable, "-c", CLASS_MEANS, str(repeats), str(out)], cwd=tree, check=True,
                   stdout=sys.stderr, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return json.loads(out.read_text())


def commit_of(revision: str) -> str:
    """The full hash of ``revision`` of this repository."""
    return subprocess.run(["git", "rev-parse", revision], cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def has_local_changes() -> bool:
    """Whether this checkout's tracked files differ from its commit (then that commit is not all that was measured)."""
    return bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip())


def serve_and_measure(tree: Path, settings: Settings, serve: dict) -> dict:
    """The browser's page loads, clicks and key hold, then the load, on one gunicorn of ``tree``."""
    with served(tree, **serve) as server:
        seen = browser.measure(server, ["Conv2D_1", "Conv2D_3"], settings.clicks, settings.page_loads,
                               settings.holds)
        rows = load.run(server, [4, 8], settings.load_seconds)
        return {"command": " ".join(server.command[1:]), "view_request": view_request_name(server), **seen,
                "load": {str(r["clients"]): r for r in rows}}


def measure(settings: Settings, baseline_rev: str) -> dict:
    """Every measurement, ours and the baseline's, interleaved so that drift in the machine's load hits both."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        base = extract(baseline_rev, scratch / "baseline")
        results: dict = {"trees": {"ours": {"commit": commit_of("HEAD"), "local_changes": has_local_changes()},
                                   "baseline": {"commit": commit_of(baseline_rev)}},
                         "ours": {}, "baseline": {}}
        for side, tree in (("baseline", base), ("ours", ROOT)):
            log(f"{side}: server view and bytes")
            arguments = [str(BENCH / "view_server.py"), "--tree", str(tree), "--views", str(settings.views)]
            if side == "ours":
                arguments += ["--blog", str(settings.blog_views)]
            view = python_json(arguments, ROOT, scratch, f"view-{side}")
            view.pop("tree")  # a temporary folder: the tree is named by its commit in results["trees"]
            results[side]["view"] = view
        log(f"forward pass of one image: the engine's probe and the plain traced one, {settings.forward_calls} calls")
        forward = python_json([str(BENCH / "forward_pass.py"), "--calls", str(settings.forward_calls)], ROOT, scratch,
                              "forward")
        results["forward_pass"] = forward["mnist-cnn"]
        for side, tree in (("baseline", base), ("ours", ROOT)):
            log(f"{side}: fresh `make run` until the first page's grid is drawn")
            results[side]["first_impression"] = browser.first_impression(tree)
        for side, tree, serve in (("ours", ROOT, {}), ("baseline", base, BASELINE_SERVE)):
            log(f"{side}: page loads, clicks, key hold and load under gunicorn")
            results[side]["served"] = serve_and_measure(tree, settings, serve)
        for side, tree in (("baseline", base), ("ours", ROOT)):
            log(f"{side}: class means")
            results[side]["class_means"] = class_means(tree, settings.class_repeats, scratch, f"class-{side}")
        log("training: job path vs plain fit" + (", Fashion-MNIST epoch" if settings.fashion else ""))
        arguments = [str(BENCH / "training_overhead.py"), "--rounds", str(settings.rounds),
                     "--epochs", str(settings.epochs), "--hook-repeats", str(settings.hook_repeats)]
        arguments += ["--fashion-plain"] if settings.fashion else ["--skip-fashion"]
        results["training"] = python_json(arguments, ROOT, scratch, "training")
        return results
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@dataclass
class Row:
    figure: str
    ours: float | None
    baseline: float | None
    unit: str
    target: str
    hit: bool | None  # None: no target, only reported
    note: str = ""

    def cells(self) -> list[str]:
        def number(value: float | None) -> str:
            if value is None:
                return "—"
            return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

        ratio = "—" if not self.ours or not self.baseline else f"{self.ours / self.baseline:.2f}"
        verdict = "reported" if self.hit is None else ("hit" if self.hit else "**miss**")
        return [self.figure, f"{number(self.ours)} {self.unit}".strip(), f"{number(self.baseline)} {self.unit}".strip(),
                ratio, self.target, verdict + (f" ({self.note})" if self.note else "")]


def milestones(page: dict) -> str:
    """Where a page's time went before its grid was drawn (:data:`browser.FIRST_DRAWN`'s requests), in words."""
    parts = [f"scripts run {page['dom_content_loaded_ms'] / 1000:.2f} s"]
    for name, start, end, size in page["requests"]:
        if name == "plotly.min.js":
            parts.append(f"Plotly loaded {end / 1000:.2f} s")
        elif name == "_dash-update-component":
            parts.append(f"a callback of {size / 1000:.0f} kB sent {start / 1000:.2f} s, answered {end / 1000:.2f} s")
        elif name == "explorer-view":
            parts.append(f"explorer-view answered {end / 1000:.2f} s")
    return ", ".join(parts) + f", grid drawn {page['drawn_ms'] / 1000:.2f} s"


def rows_of(results: dict) -> list[Row]:
    """The table: one row per figure, ours against its same-run baseline (the issue's figures first)."""
    ours, base = results["ours"], results["baseline"]
    rows = []
    for layer in ("Conv2D_1", "Conv2D_3"):
        clicks = ours["served"]["clicks"][layer]
        value = clicks["median"]
        rows.append(Row(f"click ▶ → grid redrawn, {layer} (headless chromium, median)", value,
                        base["served"]["clicks"][layer]["median"], "ms", "≤ 80 ms", value <= 80,
                        f"answer {clicks['answered_median']:.0f} ms after the click ({clicks['answers_fetched_ahead']} "
                        f"of {clicks['n']} fetched ahead), drawn {clicks['drawing_median']:.0f} ms after the answer"))
    hold, base_hold = ours["served"]["hold"], base["served"]["hold"]
    holds = f"median of {hold['holds']}, each {hold['views_per_s_each']}/s; " if hold["holds"] > 1 else ""
    rows.append(Row(f"holding → (key repeat every {browser.KEY_REPEAT_MS} ms) on {hold['layer']}: views drawn per "
                    "second", hold["views_per_s"], base_hold["views_per_s"], "/s", "≥ 10/s",
                    hold["views_per_s"] >= 10,
                    f"{holds}{hold['views_drawn']} images drawn over {hold['presses']} presses in "
                    f"{hold['held_s']:.2f} s; presses up to {hold['longest_press_gap_ms']:.0f} ms apart (page busy)"))

    def landed(side: dict) -> str:
        worst = side["worst"]
        return f"image {worst['target_image']} pressed, {worst['last_drawn_image']} drawn last"

    rows.append(Row("holding →: last key press → the last image drawn (queue build-up; worst hold)",
                    hold["last_key_to_last_drawn_ms"], base_hold["last_key_to_last_drawn_ms"], "ms",
                    f"≤ {browser.NO_QUEUE_MS} ms, the image last pressed", hold["no_queue"],
                    f"{landed(hold)} (baseline: {landed(base_hold)})"))
    mine, theirs = ours["served"]["load"]["8"], base["served"]["load"]["8"]
    cpu = mine["worker_cpu_ms_per_view"]
    rows.append(Row("server CPU per explorer view (8 clients; workers, all threads)", cpu,
                    theirs["worker_cpu_ms_per_view"], "ms", "≤ 3.5 ms", cpu <= 3.5,
                    f"at most {1000 * (os.cpu_count() or 1) / cpu:.0f} views/s on {os.cpu_count()} cores"))
    for clients in ("4", "8"):
        mine, theirs = ours["served"]["load"][clients], base["served"]["load"][clients]
        rows.append(Row(f"views/s, {clients} closed-loop clients", mine["views_per_s"], theirs["views_per_s"], "/s",
                        "≥ 450/s" if clients == "8" else "", mine["views_per_s"] >= 450 if clients == "8" else None,
                        f"clients' own CPU {mine['client_cpu_share']:.0%}; "
                        f"{mine['errors']} errors (baseline {theirs['errors']})"))
        rows.append(Row(f"p95 latency, {clients} clients", mine["p95_ms"], theirs["p95_ms"], "ms",
                        "≤ 40 ms" if clients == "8" else "", mine["p95_ms"] <= 40 if clients == "8" else None))
    forward = results["forward_pass"]
    engine_runs = "XLA-compiled" if forward["engine_runs_xla"] else "traced"
    rows.append(Row(f"forward pass of one image (bundled mnist-cnn, every layer; median of {forward['calls']})",
                    forward["engine_ms"], forward["traced_ms"], "ms", "≤ 1 ms", forward["engine_ms"] <= 1,
                    f"baseline: the plain traced probe; the engine's probe runs {engine_runs}; Keras's "
                    f"predict_on_batch {forward['keras_ms']:.2f} ms"))
    blog = ours["view"]["blog_ms"]["median"]
    ours_x = blog / ours["view"]["step_ms"]["median"]
    base_x = blog / base["view"]["step_ms"]["median"]
    rows.append(Row(f"speed-up over the blog's per-view approach ({blog:,.0f} ms a view), one step as each design "
                    "serves it", ours_x, base_x, "×", "≥ 150×", ours_x >= 150,
                    f"over the server CPU of a view under load instead: "
                    f"{blog / ours['served']['load']['8']['worker_cpu_ms_per_view']:.0f}×; over the forward pass "
                    f"alone: {blog / results['forward_pass']['engine_ms']:.0f}×"))
    first, base_first = ours["first_impression"], base["first_impression"]
    rows.append(Row("fresh `make run`: server ready (default model open) → first page's grid drawn (headless "
                    "chromium)",
                    first["ready_to_drawn_s"], base_first["ready_to_drawn_s"], "s", "≤ 2 s",
                    first["ready_to_drawn_s"] <= 2,
                    f"from navigation: {milestones(first)}; chromium's start-up ({first['chromium_start_s']:.1f} s) "
                    "not counted"))
    rows.append(Row("fresh `make run`: process start → /healthz 200", first["process_to_answer_s"],
                    base_first["process_to_answer_s"], "s", "", None))
    rows.append(Row("fresh `make run`: process start → ready (/healthz `warm`; the baseline: its 200)",
                    first["process_to_ready_s"], base_first["process_to_ready_s"], "s", "", None))
    loads, base_loads = ours["served"]["page_loads"], base["served"]["page_loads"]
    rows.append(Row(f"page load → grid drawn, warm server (median of {loads['n']})", loads["median"] / 1000,
                    base_loads["median"] / 1000, "s", "≤ 0.8 s", loads["median"] <= 800,
                    f"median load: {milestones(loads['median_load'])}; the first (browser cache cold) "
                    f"{loads['ms'][0] / 1000:.2f} s"))
    plain, wire = ours["view"]["bytes"]["plain"] / 1000, ours["view"]["bytes"]["wire"] / 1000
    route = ours["view"].get("route_bytes")
    rows.append(Row("bytes of one Conv2D_1 view (render callback), uncompressed", plain,
                    base["view"]["bytes"]["plain"] / 1000, "kB", "≤ 100 kB", plain <= 100))
    rows.append(Row(f"bytes of one Conv2D_1 view (render callback) on the wire ({ours['view']['bytes']['encoding']})",
                    wire, base["view"]["bytes"]["wire"] / 1000, "kB", "< uncompressed, ≤ 100 kB",
                    wire < plain and wire <= 100,
                    f"a step's answer (explorer-view route): {route['plain'] / 1000:.1f} kB, "
                    f"{route['wire'] / 1000:.1f} kB {route['encoding']}" if route else ""))
    rss = max(ours["served"]["load"]["8"]["worker_rss_mb"])
    rows.append(Row("memory per worker after the load (RSS, largest worker)", rss,
                    max(base["served"]["load"]["8"]["worker_rss_mb"]), "MB", "", None))
    step, base_step = ours["view"]["step_ms"]["median"], base["view"]["step_ms"]["median"]
    rows.append(Row("server view, one step as each design serves it (through Flask, median)", step, base_step, "ms",
                    "", None, f"ours: {ours['view']['step_request']}; baseline: {base['view']['step_request']}"))
    for key, label in (("image_change_ms", "image change"), ("layer_change_ms", "layer change"),
                       ("next_image_ms", "next image (neighbour just viewed)")):
        value = ours["view"][key]["median"]
        forward_ms = ours["view"].get("forward_ms")
        note = f"the engine's forward pass, grid and probabilities {forward_ms['median']:.1f} ms of it" \
            if key == "image_change_ms" and forward_ms else ""
        rows.append(Row(f"server view, render callback, {label} (engine + figures + JSON, median)", value,
                        base["view"][key]["median"], "ms", "", None, note))

    def slowest(side: dict, key: str) -> float:
        return max(r[key] for r in side["class_means"])

    cold, cached = slowest(ours, "cold_s"), slowest(ours, "cached_ms")
    rows.append(Row("class means, cold, slowest layer (1,000 images)", cold, slowest(base, "cold_s"), "s", "≤ 2 s",
                    cold <= 2))
    rows.append(Row("class means, cached, slowest layer", cached, slowest(base, "cached_ms"), "ms", "≤ 50 ms",
                    cached <= 50))
    training = results["training"]
    ratio = training["job_wall_s"] / training["plain_wall_s"]
    rows.append(Row(f"training run, job path vs plain fit (wall, {training['epochs']} epochs, median of "
                    f"{training['rounds']})", training["job_wall_s"], training["plain_wall_s"], "s",
                    "ratio ≤ 1.05", ratio <= 1.05, f"hooks timed alone: {training['hook_share']:.1%} of an epoch"))
    if "fashion_plain_s" in training:
        ratio = training["fashion_job_s"] / training["fashion_plain_s"]
        rows.append(Row(f"Fashion-MNIST, one epoch through the job path (epoch {training['fashion_epoch_s']:.1f} s)",
                        training["fashion_job_s"], training["fashion_plain_s"], "s", "ratio ≤ 1.05", ratio <= 1.05))
    else:
        rows.append(Row("Fashion-MNIST, one epoch (skipped: quick run or data set not installed)", None, None, "", "",
                        None))
    return rows


def table(rows: list[Row]) -> str:
    header = ["figure", "ours", "baseline", "ratio", "target", "hit/miss"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def report(results: dict, rows: list[Row], settings: Settings, quick: bool, load_avg: tuple, note: str = "") -> str:
    """``BENCHMARKS.md``: the table, how each figure was measured, and the raw results; both trees named by commit."""
    trees = results["trees"]
    ours_commit = trees["ours"]["commit"] + (" (with local changes)" if trees["ours"]["local_changes"] else "")
    ours, base = results["ours"], results["baseline"]
    ours_load, base_load = ours["served"]["load"], base["served"]["load"]
    hold = ours["served"]["hold"]
    others = ", ".join(str(start) for start in browser.HOLD_STARTS[1:settings.holds])
    repeated_holds = f" ({settings.holds} holds, the others opened at images {others}: the median hold reported, " \
        "with the worst tail)" if settings.holds > 1 else ""
    lines = [
        "# Benchmarks",
        "",
        f"`make bench{' QUICK=1' if quick else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"commit {ours_commit} against baseline {trees['baseline']['commit']} (the design before this work: every "
        f"step a Dash render callback), both measured in this run. {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; load average {load_avg[0]:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end.",
        *(["", note] if note else []),
        "",
        table(rows),
        "",
        "Ratio is ours / baseline (lower is better for times and bytes, higher for views/s and the speed-up).",
        "",
        "## How each figure was measured",
        "",
        "Each tree is served from its own files (the baseline extracted with `git archive`) by the same interpreter "
        "and packages; the browser is headless Debian chromium through chromedriver, every browser time read on the "
        "page's own clock (`performance.now()`).",
        "",
        f"- **click → redrawn** (`bench/browser.py`): on each tree's gunicorn, the explorer opened at image 0, then "
        f"{settings.clicks} clicks of ▶ per layer, {browser.PAUSE_S:g} s apart, each timed from `performance.now()` "
        "just before the click to the heatmap's `plotly_afterplot` whose title names the next image. The answer is "
        "the click until the view's answer had arrived (resource timing: the render callback's answer of more than "
        f"{browser.RENDER_BYTES} bytes, or the explorer-view route's answer for that image, 0 when it was fetched "
        "ahead before the click); drawn is the rest.",
        f"- **holding →**: the explorer opened at image 0 on {hold['layer']}{repeated_holds}, then `keydown` "
        "ArrowRight dispatched on "
        f"the document (where `assets/explorer.js` listens) every {browser.KEY_REPEAT_MS} ms for "
        f"{browser.HOLD_S:g} s from a timer in the page, each press its own task (a press due while the page is "
        "busy goes as soon as it is free, as queued key repeats do), and every redraw of the heatmap recorded with "
        f"its title until nothing was redrawn for {browser.SETTLED_S:g} s. Views drawn per second = distinct images "
        "drawn between the first and the last press over that time. Queue build-up = the time from the last press "
        "to the last redraw, and whether that last redraw shows the image the last press asks for (presses counted "
        f"from the image opened); no build-up: ≤ {browser.NO_QUEUE_MS} ms and the right image.",
        "- **fresh `make run`**: each tree started as `make run` starts it (`python -m app`, its folder as working "
        "directory, a copy of its `model_store` as `MODEL_STORE`, a fresh `STATE_DIR`, `HOST` 127.0.0.1 and a free "
        f"`PORT`), after a fresh chromium was started and had opened `about:blank` (its start-up not counted); "
        f"ready = process start → `/healthz` 200 saying `\"warm\": true` (the default model opened in the "
        f"background; the baseline, which has no `warm`, is ready at its first 200; polled every "
        f"{browser.READY_POLL_S * 1000:.0f} ms); then `/` "
        "opened at once, timed from ready to the grid naming image 0 drawn: the seconds from ready to the "
        "navigation (Python's clock) plus the page's own time from navigation start to the grid drawn.",
        f"- **page load → grid drawn**: on each tree's gunicorn after its warm-up, before any other view, "
        f"`/?model=mnist-cnn&layer=Conv2D_1&image=N` opened {settings.page_loads} times with a new N each time "
        "(far apart, so no view of it is cached on the server), each timed from navigation start (the page's "
        "`performance.now()` is 0 there) to its grid drawn; median. The first load has the browser's cache "
        "cold. Drawn, here and for `make run`: a script installed before the page's own (CDP "
        "`Page.addScriptToEvaluateOnNewDocument`) polls every 5 ms for the heatmap, attaches a `plotly_afterplot` "
        "listener as soon as Plotly has set the graph up, and notes the first poll that finds the title naming "
        "the image and the heatmap's picture drawn; the earlier of the two counts (a plot drawn in the task that "
        "set it up fires its event before any listener can be attached; the poll sees it at most 5 ms late).",
        f"- **views/s, p95, server CPU per view** (`bench/load.py`): closed-loop clients on loopback (keep-alive, "
        f"`Accept-Encoding: zstd, br, gzip`, every answer checked), each sending what one view costs in that "
        f"tree's design, a random image and layer, {settings.load_seconds:g} s per client count after a "
        f"{load.WARM_UP_S:g} s warm-up. Ours sent {ours['served']['view_request']}; the baseline sent "
        f"{base['served']['view_request']} (a tree that answers the explorer-view route with 200 is sent that "
        f"route). Ours: `{ours['served']['command']}`; baseline: `{base['served']['command']}`. Server CPU per view: "
        "user + system CPU of all gunicorn workers (all threads) over the 8-client phase, over the views answered. "
        f"The clients took {ours_load['8']['client_cpu_share']:.0%} (ours) and "
        f"{base_load['8']['client_cpu_share']:.0%} (baseline) of the machine's CPU at 8 clients.",
        f"- **forward pass** (`bench/forward_pass.py`, run once in this tree): one image through every layer of the "
        f"bundled mnist-cnn, median of {settings.forward_calls} calls, the ways taking turns image by image; ours = "
        "the engine's probe as it chooses it for the model (`engine_ms`), baseline = the plain traced probe the "
        "baseline ran (`traced_ms`).",
        f"- **speed-up**: the blog's per-view approach (load + sub-model + predict + tile; {settings.blog_views} "
        "views) over one step as each design serves it (`bench/view_server.py`, in-process through Flask's test "
        "client with a browser's `Accept-Encoding`, a random layer and an image no view touched, "
        f"{settings.views} steps 30 ms apart): ours {ours['view']['step_request']}, baseline "
        f"{base['view']['step_request']}.",
        "- **bytes** (`bench/view_server.py`): the render callback's answer for Conv2D_1, image 3, through Flask's "
        "test client, plain and with `Accept-Encoding: zstd, br, gzip` (and the explorer-view route's, where the "
        "tree has it).",
        f"- **memory per worker**: RSS of each gunicorn worker after the load, ours "
        f"{ours_load['8']['worker_rss_mb']} MB, baseline {base_load['8']['worker_rss_mb']} MB.",
        f"- **server view, render callback** (`bench/view_server.py`): `explore.render` + Dash's `to_json` of its "
        f"answer, in-process, {settings.views} views each, 30 ms apart; image change = random image and layer (one "
        "forward pass), layer change = same image, next image = image i + 1 just after image i.",
        f"- **class means** (`bench/class_stats.py`'s `time_mnist`): cold = new store and engine, median of "
        f"{settings.class_repeats}; cached = median of 50.",
        f"- **training** (`bench/training_overhead.py`): the blog config on the bundled subset, job path "
        f"(`run_job`) and plain `model.fit` alternated, {settings.rounds} rounds of {settings.epochs} epochs"
        + ("; one Fashion-MNIST epoch through each." if settings.fashion else "."),
        "",
        "## Raw results",
        "",
        "```json",
        json.dumps(results, indent=1, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE)
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--note", default="", help="a paragraph for BENCHMARKS.md (e.g. the state of the machine)")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    load_avg = os.getloadavg()
    started = time.monotonic()
    results = measure(settings, args.baseline)
    rows = rows_of(results)
    text = report(results, rows, settings, args.quick, load_avg, args.note)
    args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(table(rows))
    log(f"done in {time.monotonic() - started:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
