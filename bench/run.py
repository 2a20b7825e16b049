"""``make bench``: every benchmark of the project in one run, each figure next to its same-run baseline, as one table
(figure, ours, baseline, ratio, target, hit/miss) printed and written to ``BENCHMARKS.md``.

Baselines, all measured in this run on this machine:

- the explorer's figures (click to redraw, bytes, views/s, server view, worker memory, class means): the same
  measurement on the project as it was before this work (``--baseline``, a git revision extracted with
  ``git archive`` into a temporary folder and served as its own ``make serve`` served it: 2 workers x 4 threads);
- the blog's per-view approach (load + sub-model + predict + tile) for the speed-up;
- a plain ``model.fit`` for the training job path and the Fashion-MNIST epoch.

``--quick`` (``make bench QUICK=1``) runs fewer repetitions and skips the Fashion-MNIST epoch: under 3 minutes,
the same table. Shared machines are noisy: medians and p95 over many repetitions, ratios against the same run.
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
from serving import served  # noqa: E402

# The project before the explorer was made faster (the merge of 2026-11-29 that added the Models page).
DEFAULT_BASELINE = "7d952c742b267ce78a0ab8f1ba35d428543eb2ac"
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
    fashion: bool
    baseline_class_means: bool  # class statistics are not changed by this work: the quick run skips their baseline


FULL = Settings(views=60, blog_views=8, clicks=20, load_seconds=20, class_repeats=3, rounds=3, epochs=2,
                hook_repeats=200, fashion=True, baseline_class_means=True)
QUICK = Settings(views=15, blog_views=2, clicks=6, load_seconds=4, class_repeats=1, rounds=1, epochs=1,
                 hook_repeats=20, fashion=False, baseline_class_means=False)


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


def serve_and_measure(tree: Path, settings: Settings, serve: dict) -> dict:
    """The browser's click times, then the load, on one gunicorn of ``tree``."""
    with served(tree, **serve) as server:
        clicks = browser.measure(server, ["Conv2D_1", "Conv2D_3"], settings.clicks)
        rows = load.run(server, [4, 8], settings.load_seconds)
        return {"command": " ".join(server.command[1:]), "clicks": clicks, "load": {str(r["clients"]): r for r in rows}}


def measure(settings: Settings, baseline_rev: str) -> dict:
    """Every measurement, ours and the baseline's, interleaved so that drift in the machine's load hits both."""
    scratch = Path(tempfile.mkdtemp(prefix="bench-run-"))
    try:
        base = extract(baseline_rev, scratch / "baseline")
        results: dict = {"ours": {}, "baseline": {}}
        for side, tree in (("baseline", base), ("ours", ROOT)):
            log(f"{side}: server view and bytes")
            arguments = [str(BENCH / "view_server.py"), "--tree", str(tree), "--views", str(settings.views)]
            if side == "ours":
                arguments += ["--blog", str(settings.blog_views)]
            results[side]["view"] = python_json(arguments, ROOT, scratch, f"view-{side}")
        for side, tree, serve in (("ours", ROOT, {}), ("baseline", base, BASELINE_SERVE)):
            log(f"{side}: browser clicks and load under gunicorn")
            results[side]["served"] = serve_and_measure(tree, settings, serve)
        for side, tree in (("baseline", base), ("ours", ROOT)):
            if side == "baseline" and not settings.baseline_class_means:
                results[side]["class_means"] = None
                continue
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


def rows_of(results: dict) -> list[Row]:
    """The table: one row per figure, ours against its same-run baseline."""
    ours, base = results["ours"], results["baseline"]
    rows = []
    for layer in ("Conv2D_1", "Conv2D_3"):
        clicks = ours["served"]["clicks"][layer]
        value = clicks["median"]
        rows.append(Row(f"click \"next image\" → heatmap redrawn, {layer} (chromium, median)", value,
                        base["served"]["clicks"][layer]["median"], "ms", "≤ 80 ms", value <= 80,
                        f"answer {clicks['answered_median']:.0f} ms after the click, drawn "
                        f"{clicks['drawing_median']:.0f} ms after the answer"))
    plain, wire = ours["view"]["bytes"]["plain"] / 1000, ours["view"]["bytes"]["wire"] / 1000
    rows.append(Row("bytes of one Conv2D_1 view, uncompressed", plain, base["view"]["bytes"]["plain"] / 1000, "kB",
                    "≤ 100 kB", plain <= 100))
    rows.append(Row(f"bytes of one Conv2D_1 view on the wire ({ours['view']['bytes']['encoding']})", wire,
                    base["view"]["bytes"]["wire"] / 1000, "kB", "< uncompressed, ≤ 100 kB",
                    wire < plain and wire <= 100))
    for clients in ("4", "8"):
        mine, theirs = ours["served"]["load"][clients], base["served"]["load"][clients]
        cpu = mine["worker_cpu_ms_per_view"]
        rows.append(Row(f"views/s, {clients} closed-loop clients", mine["views_per_s"], theirs["views_per_s"], "/s",
                        "≥ 400" if clients == "8" else "", mine["views_per_s"] >= 400 if clients == "8" else None,
                        f"clients' own CPU {mine['client_cpu_share']:.0%}; the server's CPU {cpu:.1f} ms a view, "
                        f"at most {1000 * (os.cpu_count() or 1) / cpu:.0f}/s on {os.cpu_count()} cores"))
        rows.append(Row(f"p95 latency, {clients} clients", mine["p95_ms"], theirs["p95_ms"], "ms",
                        "≤ 50 ms" if clients == "8" else "", mine["p95_ms"] <= 50 if clients == "8" else None))
    rss = max(ours["served"]["load"]["8"]["worker_rss_mb"])
    rows.append(Row("memory per worker after the load (RSS, largest worker)", rss,
                    max(base["served"]["load"]["8"]["worker_rss_mb"]), "MB", "", None))
    for key, label, target in (("image_change_ms", "image change", 3.0), ("layer_change_ms", "layer change", None),
                               ("next_image_ms", "next image (neighbour just viewed)", None)):
        value = ours["view"][key]["median"]
        forward = ours["view"].get("forward_ms")
        note = f"TensorFlow's forward pass {forward['median']:.1f} ms of it" if key == "image_change_ms" and forward \
            else ""
        rows.append(Row(f"server view, {label} (engine + figures + JSON, median)", value,
                        base["view"][key]["median"], "ms", f"≤ {target:g} ms" if target else "",
                        value <= target if target else None, note))
    blog = ours["view"]["blog_ms"]["median"]
    ours_x = blog / ours["view"]["image_change_ms"]["median"]
    base_x = blog / base["view"]["image_change_ms"]["median"]
    rows.append(Row(f"speed-up over the blog's per-view approach ({blog:,.0f} ms a view), image change", ours_x,
                    base_x, "×", "≥ 80×", ours_x >= 80))
    def slowest(side: dict, key: str) -> float | None:
        return max(r[key] for r in side["class_means"]) if side["class_means"] else None

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


def report(results: dict, rows: list[Row], settings: Settings, quick: bool, baseline_rev: str, load_avg: tuple,
           note: str = "") -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    ours_load, base_load = results["ours"]["served"]["load"], results["baseline"]["served"]["load"]
    lines = [
        "# Benchmarks",
        "",
        f"`make bench{' QUICK=1' if quick else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"commit {commit.strip()}{' (with local changes)' if dirty else ''} against baseline "
        f"{baseline_rev[:10]} (the project before this work), both measured in this run. {os.cpu_count()} cores, "
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
        f"- **click → redrawn** (`bench/browser.py`): headless Debian chromium on each tree's gunicorn; the explorer "
        f"opened at image 0, then {settings.clicks} clicks of ▶ per layer, {browser.PAUSE_S:g} s apart, each timed "
        "from `performance.now()` just before the click to the heatmap's `plotly_afterplot` whose title names the "
        "next image.",
        "- **bytes** (`bench/view_server.py`): the render callback's answer for Conv2D_1, image 3, through Flask's "
        "test client, plain and with `Accept-Encoding: zstd, br, gzip`.",
        f"- **views/s** (`bench/load.py`): closed-loop clients on loopback (keep-alive, `Accept-Encoding: zstd, br, "
        f"gzip`, every answer checked), each sending the explorer's render callback for a random image and layer, "
        f"{settings.load_seconds:g} s per client count after a {load.WARM_UP_S:g} s warm-up. Ours: "
        f"`{results['ours']['served']['command']}`; baseline: `{results['baseline']['served']['command']}`. "
        "The clients took "
        f"{ours_load['8']['client_cpu_share']:.0%} (ours) and {base_load['8']['client_cpu_share']:.0%} (baseline) of "
        "the machine's CPU at 8 clients.",
        f"- **memory per worker**: RSS of each gunicorn worker after the load, ours "
        f"{ours_load['8']['worker_rss_mb']} MB, baseline {base_load['8']['worker_rss_mb']} MB.",
        f"- **server view** (`bench/view_server.py`): `explore.render` + Dash's `to_json` of its answer, in-process, "
        f"{settings.views} views each, 30 ms apart; image change = random image and layer (one forward pass), layer "
        "change = same image, next image = image i + 1 just after image i.",
        f"- **class means** (`bench/class_stats.py`'s `time_mnist`): cold = new store and engine, median of "
        f"{settings.class_repeats}; cached = median of 50.",
        f"- **training** (`bench/training_overhead.py`): the blog config on the bundled subset, job path "
        f"(`run_job`) and plain `model.fit` alternated, {settings.rounds} rounds of {settings.epochs} epochs"
        + ("; one Fashion-MNIST epoch through each." if settings.fashion else "."),
        "",
        "## Raw results",
        "",
        "```json",
        json.dumps(results, indent=1, default=str)[:20000],
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
    text = report(results, rows, settings, args.quick, args.baseline, load_avg, args.note)
    args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(table(rows))
    log(f"done in {time.monotonic() - started:.0f} s; written to {args.out}")


if __name__ == "__main__":
    main()
