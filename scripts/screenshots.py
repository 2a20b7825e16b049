"""Screenshots of every page at a wide and a narrow window, for the README (``docs/screenshots/``).

Starts the app (``python -m app``) on a free port with a temporary state folder, opens every page in headless
Debian chromium through selenium at 1400 and 800 px wide, waits until the page's graphs have drawn, and saves one
PNG per page and width, reduced to a palette so each stays small. The server's process group is stopped in every
case.

Usage: ``.venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--chromium /usr/bin/chromium]``
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

ROOT = Path(__file__).resolve().parent.parent
# Each page in a state that shows what it is for (the blog's 4 against 9 where classes are chosen).
PAGES = {
    "explore": "/?model=mnist-cnn&layer=Conv2D_2&image=252&cmap=greys",
    # the README's tour: the 4 that looks like a 9, a clear 4, a clear 9, and one map that separates 4s from 9s
    "compare": "/compare?model=mnist-cnn&layer=Conv2D_3&images=663,3,18&cmap=viridis&unit=88",
    "finder": "/finder?model=mnist-cnn&true=4&sort=probability-desc&prob=9",
    "classes": "/classes?model=mnist-cnn&layer=Conv2D_3&a=4&b=9",
    "why": "/why?model=mnist-cnn&image=663",  # the blog's 4 that looks like a 9: why 4, and not 9
    "train": "/train",
    "models": "/models?model=mnist-cnn",
    "features": "/features?model=mnist-cnn&layer=Conv2D_1&image=663&unit=5",
}
WIDTHS = (1400, 800)
HEIGHT = 1000
PALETTE_COLOURS = 128
SETTLE_S = 1.5
STARTUP_TIMEOUT_S = 120
PAGE_TIMEOUT_S = 60


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, server: subprocess.Popen) -> None:
    """Poll ``url`` until it answers; fail at once if the server exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the server did not answer {url} within {STARTUP_TIMEOUT_S} s")


def browser(chromium: str) -> webdriver.Chrome:
    """Headless chromium with no network chatter."""
    options = Options()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--hide-scrollbars", f"--window-size={WIDTHS[0]},{HEIGHT}"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options)


GRAPHS_DRAWN = """
const graphs = Array.from(document.querySelectorAll('.dash-graph'));
const loading = document.querySelector('._dash-loading, .dash-spinner, [data-dash-is-loading="true"]');
// the Features page computes a layer in the background first: its picture is the finished grid
const computing = document.body.innerText.includes('in the background');
return !loading && !computing && graphs.length > 0 && graphs.every(g => g.querySelector('.main-svg'));
"""


FREEZE_GRAPH_HEIGHTS = """
document.querySelectorAll('.dash-graph').forEach(g => { g.style.height = g.getBoundingClientRect().height + 'px'; });
"""


def capture(driver: webdriver.Chrome, url: str, width: int, path: Path) -> None:
    """Open ``url`` at ``width`` px, wait for its graphs, and save the whole page height as a palette PNG."""
    driver.set_window_size(width, HEIGHT)
    driver.get(url)
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while time.monotonic() < deadline and not driver.execute_script(GRAPHS_DRAWN):
        time.sleep(0.3)
    time.sleep(SETTLE_S)  # the last callbacks redraw after the graphs first appear
    # Heights given in vh (Explore's grid is 72vh) would grow with the taller window the whole page needs: each
    # graph keeps the height it has in a HEIGHT px window, as a person sees it.
    driver.execute_script(FREEZE_GRAPH_HEIGHTS)
    height = min(driver.execute_script("return document.documentElement.scrollHeight"), 2400)
    driver.set_window_size(width, height)
    time.sleep(0.5)
    image = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    image.quantize(PALETTE_COLOURS, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def main() -> None:
    """Start the server, capture every page at every width, stop the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--pages", nargs="+", choices=list(PAGES), default=list(PAGES),
                        help="only these pages (the others' screenshots stay as they are)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        env = dict(os.environ, PORT=str(port), HOST="127.0.0.1", STATE_DIR=state, TF_CPP_MIN_LOG_LEVEL="2")
        for name in ("AUTH_USERS", "AUTH_USERS_FILE", "READ_ONLY", "REDIS_URL"):
            env.pop(name, None)
        server = subprocess.Popen([sys.executable, "-m", "app"], cwd=ROOT, env=env, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        driver = None
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(base + "/healthz", server)
            driver = browser(args.chromium)
            for name, path in ((name, PAGES[name]) for name in args.pages):
                for width in WIDTHS:
                    target = args.out / f"{name}-{width}.png"
                    capture(driver, base + path, width, target)
                    print(f"{target}: {target.stat().st_size // 1024} kB")
        finally:
            if driver is not None:
                driver.quit()
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
