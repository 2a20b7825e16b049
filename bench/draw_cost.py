"""What drawing one stepped image costs the page, part by part, in headless chromium.

On this checkout's gunicorn, the explorer opened on ``--layer``; then for each part of a step's draw
(``assets/image_stepping.js``: the grid's figure, the input's, the probabilities', the caption, all four as a step
draws them, and the grid's figure handed to ``Plotly.react`` directly, past Dash) a script in the page fetches a
new image's explorer-view answer, hands that part over and times, on the page's clock, until the next frame after
the work it started (a task, then an animation frame, then a task): median of ``--repeats``. A held key draws at
most one view per "all four" of these.

Usage: ``python bench/draw_cost.py [--layer Conv2D_1] [--repeats 7] [--json PATH]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from browser import chromium, wait
from serving import MODEL, served

ROOT = Path(__file__).resolve().parent.parent
PARTS = {
    "grid figure (set_props)": ["grid"],
    "input figure (set_props)": ["input"],
    "probabilities figure (set_props)": ["probabilities"],
    "caption (set_props)": ["caption"],
    "all four, as a step draws them": ["grid", "input", "probabilities", "caption"],
    "grid figure by Plotly.react alone (past Dash)": ["grid_react"],
}
TIME_PARTS = """
const [model, layer, parts, repeats, firstImage] = Array.from(arguments).slice(0, 5);
const done = arguments[arguments.length - 1];
const hand = {
    grid: a => window.dash_clientside.set_props('explore-heatmap', {figure: a.heatmap}),
    input: a => window.dash_clientside.set_props('explore-input', {figure: a.input}),
    probabilities: a => window.dash_clientside.set_props('explore-probabilities', {figure: a.probabilities}),
    caption: a => window.dash_clientside.set_props('explore-image-info', {children: a.caption}),
    grid_react: a => Plotly.react(document.querySelector('#explore-heatmap .js-plotly-plot'), a.heatmap.data,
                                  a.heatmap.layout),
};
const nextTask = () => new Promise(resolve => setTimeout(resolve, 0));
const nextFrame = () => new Promise(resolve => requestAnimationFrame(resolve));
(async () => {
    const result = {};
    let image = firstImage;
    for (const [name, keys] of Object.entries(parts)) {
        const times = [];
        for (let i = 0; i < repeats; i++) {
            image += 1;
            const url = `/api/models/${model}/explorer-view?layer=${layer}&image=${image}&cmap=viridis`;
            const answer = await (await fetch(url)).json();
            const started = performance.now();
            keys.forEach(key => hand[key](answer));
            await nextTask();
            await nextFrame();
            await nextTask();
            times.push(performance.now() - started);
            await new Promise(resolve => setTimeout(resolve, 250));
        }
        times.sort((a, b) => a - b);
        result[name] = times[Math.floor(times.length / 2)];
    }
    done(result);
})();
"""
SHOWS_GRID = "const gd = document.querySelector('#explore-heatmap .js-plotly-plot'); " \
             "return !!(gd && gd._fullLayout && gd._fullLayout.title && gd._fullLayout.title.text);"


def measure(layer: str, repeats: int) -> dict[str, float]:
    """The median milliseconds of each part of a draw, on a gunicorn of this checkout."""
    with served(ROOT) as server:
        driver = chromium()
        try:
            driver.set_script_timeout(120)
            driver.get(f"{server.url}/?model={MODEL}&layer={layer}&image=0")
            wait(driver, SHOWS_GRID, timeout=60)
            return driver.execute_async_script(TIME_PARTS, MODEL, layer, PARTS, repeats, server.n_images // 3)
        finally:
            driver.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", default="Conv2D_1")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    parts = measure(args.layer, args.repeats)
    for name, value in parts.items():
        print(f"{name:48s} {value:7.1f} ms")
    if args.json:
        args.json.write_text(json.dumps(parts, indent=1))


if __name__ == "__main__":
    main()
