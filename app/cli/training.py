"""``python -m app.cli``: train a model from the terminal, through the same job code as the page and the API.

The run is recorded in the instance's job store (so the training page shows it live to everyone) and executed in
this process with a terminal progress bar; the model lands in MODEL_STORE like any other. Options override the
values of ``--config FILE.json`` (the JSON the API takes), which override the blog's defaults.

Examples::

    python -m app.cli --name quick --epochs 2 --max-train 1000 --filters 16,32
    python -m app.cli --config run.json --dataset fashion-mnist
    python -m app.cli --config run.json --detach      # hand it to the instance's runner and return

Ctrl-C stops at the next batch (add ``--save-partial`` to keep the model); a second Ctrl-C aborts.
Exit status: 0 succeeded or stopped, 1 failed, 2 invalid configuration or refused (a job is running).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from app.context import AppContext
from app.core.errors import ExplorerError
from app.core.training import ACTIVATIONS, OPTIMIZERS, REGULARIZERS, SCHEDULES, ConfigError, TrainingObserver
from app.jobs.worker import limit_memory, run_job
from app.views.train_form import probe_image_value

BAR_WIDTH = 30


class TerminalProgress(TrainingObserver):
    """A progress bar per epoch on stderr and one line of metrics per epoch on stdout; Ctrl-C asks to stop."""

    def __init__(self, stream=sys.stderr, refresh: float = 0.1) -> None:
        self.stream = stream
        self.refresh = refresh
        self.epochs = 0
        self.last_draw = 0.0
        self.epoch_started = time.perf_counter()
        self.stop_requested = False

    def on_train_begin(self, epochs: int, batches_per_epoch: int) -> None:
        self.epochs = epochs
        print(f"training {epochs} epochs of {batches_per_epoch} batches", flush=True)

    def on_batch_end(self, epoch: int, batch: int, batches_per_epoch: int) -> None:
        now = time.perf_counter()
        if batch == 1:
            self.epoch_started = now
        if now - self.last_draw < self.refresh and batch != batches_per_epoch:
            return
        self.last_draw = now
        done = int(BAR_WIDTH * batch / batches_per_epoch)
        elapsed = now - self.epoch_started
        eta = elapsed / batch * (batches_per_epoch - batch)
        bar = "#" * done + "-" * (BAR_WIDTH - done)
        stopping = " stopping…" if self.stop_requested else ""
        line = f"\repoch {epoch}/{self.epochs} [{bar}] {batch}/{batches_per_epoch} ETA {eta:5.1f} s{stopping}"
        self.stream.write(line)
        self.stream.flush()

    def on_epoch_end(self, epoch: int, metrics: dict[str, float], probe: dict[str, Any] | None) -> None:
        self.stream.write("\r" + " " * (BAR_WIDTH + 60) + "\r")
        print(
            f"epoch {epoch}/{self.epochs}: loss {metrics['loss']:.4f} accuracy {metrics['accuracy']:.4f} "
            f"val_loss {metrics['val_loss']:.4f} val_accuracy {metrics['val_accuracy']:.4f} "
            f"lr {metrics['learning_rate']:.3e} ({metrics['epoch_seconds']:.1f} s)",
            flush=True,
        )

    def should_stop(self) -> bool:
        return self.stop_requested


def _int_list(text: str) -> list[int]:
    try:
        return [int(item) for item in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The command-line options (each maps onto a field of the training configuration)."""
    parser = argparse.ArgumentParser(
        prog="python -m app.cli", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="a JSON file with the configuration (as POST /api/jobs takes)")
    parser.add_argument("--name", help="model name in the store")
    parser.add_argument("--dataset", help="mnist-subset, mnist, fashion-mnist, or a path to an .npz / IDX folder")
    parser.add_argument("--filters", type=_int_list, help="filters per conv layer, e.g. 32,64,128")
    parser.add_argument("--kernel", type=int, help="kernel size of every conv layer")
    parser.add_argument("--conv-activation", choices=ACTIVATIONS)
    parser.add_argument("--pool-size", type=int, help="max-pooling size after each conv layer but the last; 0: none")
    parser.add_argument("--dense", type=_int_list, help="hidden dense units, e.g. 100 (empty string: none)")
    parser.add_argument("--dense-activation", choices=ACTIVATIONS)
    parser.add_argument("--regularizer", choices=REGULARIZERS)
    parser.add_argument("--regularizer-factor", type=float)
    parser.add_argument("--optimizer", choices=OPTIMIZERS)
    parser.add_argument("--momentum", type=float)
    parser.add_argument("--lr-schedule", choices=SCHEDULES)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--decay-steps", type=int)
    parser.add_argument("--decay-rate", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--max-train", type=int)
    parser.add_argument("--max-test", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--probe-image", type=probe_image_value,
                        help="test image (a number, or a drawn or uploaded image's u:<id>) whose activations are "
                             "recorded every epoch")
    parser.add_argument("--probe-layer")
    parser.add_argument("--save-partial", action="store_true", help="on Ctrl-C, keep the partially trained model")
    parser.add_argument("--detach", action="store_true", help="hand the job to the instance's runner; print its id")
    return parser


SIMPLE_OPTIONS = (
    "name", "dataset", "pool_size", "regularizer", "regularizer_factor", "optimizer", "momentum", "lr_schedule",
    "learning_rate", "decay_steps", "decay_rate", "batch_size", "epochs", "max_train", "max_test", "seed",
    "probe_image", "probe_layer",
)


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The raw configuration: the ``--config`` file, then the options given on the command line on top."""
    raw: dict[str, Any] = {}
    if args.config:
        try:
            raw = json.loads(args.config.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError([f"cannot read {args.config}: {exc}"]) from exc
        if not isinstance(raw, dict):
            raise ConfigError([f"{args.config} must hold a JSON object"])
    for key in SIMPLE_OPTIONS:
        value = getattr(args, key)
        if value is not None:
            raw[key] = value
    if any(v is not None for v in (args.filters, args.kernel, args.conv_activation)):
        base = raw.get("conv_layers") or [{"filters": f} for f in (32, 64, 128)]
        filters = args.filters or [layer.get("filters", 32) for layer in base]
        raw["conv_layers"] = [
            {
                "filters": f,
                "kernel": args.kernel or (base[i].get("kernel", 3) if i < len(base) else 3),
                "activation": args.conv_activation or (base[i].get("activation", "relu") if i < len(base) else "relu"),
            }
            for i, f in enumerate(filters)
        ]
    if args.dense is not None or args.dense_activation:
        units = args.dense if args.dense is not None else [d.get("units", 100) for d in raw.get("dense_layers", [{}])]
        raw["dense_layers"] = [{"units": u, "activation": args.dense_activation or "relu"} for u in units]
    return raw


def os_user() -> str | None:
    """Who runs the CLI, recorded as who started the job (None if the OS cannot say: a container's bare uid)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    context = AppContext.from_env()
    jobs = context.job_runner
    try:
        raw = config_from_args(args)
        user = os_user()
        job = jobs.start(raw, started_by=user) if args.detach else jobs.submit(raw, engine="cli", started_by=user)
    except ConfigError as exc:
        print("invalid configuration:\n  " + "\n  ".join(exc.errors), file=sys.stderr)
        return 2
    except ExplorerError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    if args.detach:
        print(f"job {job.id} queued on the {jobs.engine} engine; follow it on /train or GET /api/jobs/{job.id}")
        return 0

    progress = TerminalProgress()

    def on_interrupt(_signum, _frame):
        if progress.stop_requested:
            raise KeyboardInterrupt
        progress.stop_requested = True
        if args.save_partial:
            jobs.store.update(job.id, save_partial=True)

    signal.signal(signal.SIGINT, on_interrupt)
    limit_memory(context.settings)
    print(f"job {job.id}: training {job.model!r} (watch it on /train)", flush=True)
    try:
        status = run_job(job.id, jobs.store, context.settings, extra=progress)
    except KeyboardInterrupt:
        jobs.store.finish(job.id, "failed", error="aborted from the terminal")
        print("\naborted", file=sys.stderr)
        return 1
    final = jobs.store.get(job.id)
    if status == "failed":
        print(f"failed: {final.error}", file=sys.stderr)
        return 1
    where = context.settings.model_store / final.model
    print(f"{status}: " + (f"model saved to {where}" if final.saved else "no model saved"))
    return 0
