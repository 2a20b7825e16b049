"""Views per second of the explorer under closed-loop load: N clients on loopback, each sending what one view costs
in the served tree's design (random image and layer of ``mnist-cnn``) back to back: ``GET
/api/models/mnist-cnn/explorer-view`` where the tree has that route (the page steps images with it), else the
explorer's real render callback (``POST /_dash-update-component``); see :func:`serving.view_request`.

Each client is a thread with one keep-alive connection that asks, as chromium does, for ``zstd, br, gzip``, and
checks every answer (200, the heatmap in it, decompressed where it came compressed). A phase lasts ``--seconds``
(bounded in requests too) after a short warm-up; reported per client count: views/s, p50/p95/p99 latency,
errors, the clients' own CPU share of the machine (they run on the same cores as the server), and the RSS of
each gunicorn worker after the phase.

Usage: ``python bench/load.py [--tree DIR] [--clients 4 8] [--seconds 20] [--workers N --threads N] [--json PATH]``
(``--tree``: the checkout to serve, default this one; workers and threads default to its gunicorn_conf.py).
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import os
import random
import statistics
import threading
import time
from pathlib import Path

import brotli
import psutil
from backports import zstd
from serving import HOST, Server, served, view_request, view_request_name

ROOT = Path(__file__).resolve().parent.parent
ACCEPT_ENCODING = "zstd, br, gzip"  # what chromium asks for, minus deflate
DECODERS = {"zstd": zstd.decompress, "br": brotli.decompress, "gzip": gzip.decompress, None: lambda data: data}
WARM_UP_S = 1.0
MAX_REQUESTS_PER_CLIENT = 50_000
TIMEOUT_S = 30


def client(server: Server, seed: int, deadline: float, latencies: list[float], errors: list[str]) -> None:
    """Send view requests (:func:`serving.view_request`) back to back on one connection until ``deadline``."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT_S)
    try:
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if time.monotonic() >= deadline:
                break
            view = view_request(server, rng.choice(server.layers), rng.randrange(server.n_images))
            headers = {"Accept-Encoding": ACCEPT_ENCODING}
            if view.body is not None:
                headers["Content-Type"] = "application/json"
            started = time.perf_counter()
            try:
                connection.request(view.method, view.path, body=view.body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                elapsed = (time.perf_counter() - started) * 1000
                encoding = response.getheader("Content-Encoding")
                if response.status != 200 or view.proof not in DECODERS[encoding](payload):
                    errors.append(f"HTTP {response.status} ({encoding}): {payload[:120]!r}")
                    continue
                latencies.append(elapsed)
            except (OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection(HOST, server.port, timeout=TIMEOUT_S)
    finally:
        connection.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] if ordered else float("nan")


def phase(server: Server, clients: int, seconds: float, seed: int = 0) -> dict:
    """One closed-loop phase of ``clients`` clients for ``seconds`` after a warm-up; its figures as a dict."""
    me = psutil.Process()
    for duration in (WARM_UP_S, seconds):  # the warm-up's figures are dropped
        latencies: list[float] = []
        errors: list[str] = []
        cpu_before = sum(me.cpu_times()[:2])
        workers = server.workers()
        workers_before = worker_cpu_s(workers)
        started = time.monotonic()
        deadline = started + duration
        threads = [threading.Thread(target=client, args=(server, seed + i, deadline, latencies, errors))
                   for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        client_cpu = sum(me.cpu_times()[:2]) - cpu_before
        worker_cpu = worker_cpu_s(workers) - workers_before
    return {
        "clients": clients, "request": view_request_name(server), "seconds": round(elapsed, 2),
        "views": len(latencies),
        "views_per_s": len(latencies) / elapsed, "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95), "p99_ms": percentile(latencies, 99),
        "median_ms": statistics.median(latencies) if latencies else float("nan"),
        "errors": len(errors), "first_errors": errors[:3],
        "client_cpu_share": client_cpu / (elapsed * (os.cpu_count() or 1)),
        # what one view costs the server, all threads of all workers: the machine's cores over it bound the views/s
        "worker_cpu_ms_per_view": 1000 * worker_cpu / len(latencies) if latencies else float("nan"),
        "worker_rss_mb": [round(value) for value in server.worker_rss_mb()],
    }


def worker_cpu_s(workers: list[psutil.Process]) -> float:
    """CPU seconds (user + system, all threads) the workers have used so far; a worker gone counts 0."""
    total = 0.0
    for worker in workers:
        with contextlib.suppress(psutil.Error):
            total += sum(worker.cpu_times()[:2])
    return total


def run(server: Server, client_counts: list[int], seconds: float) -> list[dict]:
    """Every client count in turn on the same server."""
    return [phase(server, clients, seconds) for clients in client_counts]


def print_rows(rows: list[dict]) -> None:
    print(f"{'clients':>7} {'views/s':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'errors':>6} "
          f"{'client CPU':>10} {'server CPU/view':>15}  worker RSS MB")
    for row in rows:
        print(f"{row['clients']:>7} {row['views_per_s']:>8.0f} {row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f} "
              f"{row['p99_ms']:>7.1f} {row['errors']:>6} {row['client_cpu_share']:>10.0%} "
              f"{row['worker_cpu_ms_per_view']:>12.1f} ms  {row['worker_rss_mb']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--clients", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with served(args.tree.resolve(), args.workers, args.threads) as server:
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {' '.join(server.command[1:])}; "
              f"each view: {view_request_name(server)}")
        rows = run(server, args.clients, args.seconds)
    print_rows(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
