"""Bounded caches of whole-test-set statistics (class means, top units, fixed colour scales), keyed by model version
and layer.

One instance per process lives in its :class:`app.context.AppContext`; a new model version never sees an old
result, and no cache grows without bound.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from app.core.cache import LRUCache
from app.core.classes import ClassMeans, compute_class_distances, compute_class_means
from app.core.errors import InvalidInput, StillComputing, Unavailable
from app.core.limits import write_arrays
from app.core.units import (
    MAX_TOP_K,
    RANGE_IMAGES,
    TopUnits,
    check_rank_by,
    compute_layer_range,
    compute_top_units,
)

if TYPE_CHECKING:
    from app.core.store import LoadedModel

DEFAULT_STATISTICS_BYTES = 64 * 10**6
# The most whole-test-set work a request may do itself; more runs as a background job. The bundled model's 1,000
# digits cost 6.4 GFLOPs (~0.3 s); a 224 px MobileNetV2 over 200 images 120 GFLOPs (~18 s on 2 cores), which
# would hold a web worker's thread and the page.
IN_REQUEST_FLOPS = 20 * 10**9


# The statistics a pass over the test set gives, by kind, with the words a progress message uses.
KINDS = {f"top-{by}": "the test images that activate each unit most" for by in ("mean", "max")} | {
    "means": "the class means", "distances": "every image's distance to each class mean",
    "range": "the layer's colour range", "predictions": "every test image's class probabilities"}
# The "layer" of a statistic of the whole model (its predictions).
WHOLE_MODEL = "model"


def images_read(kind: str, n_images: int) -> int:
    """Test images computing a statistic of ``kind`` reads: the distances read the whole set twice (the class
    means first), a colour range a fixed sample, the others the whole set once."""
    if kind == "distances":
        return 2 * n_images
    if kind == "range":
        return min(RANGE_IMAGES, n_images)
    return n_images


def save_statistic(path: Path, kind: str, value: Any) -> None:
    """Write one statistic of ``kind`` to ``path`` (.npz) atomically: readers see no file or the whole file."""
    if kind.startswith("top-"):
        arrays = {"layer": np.array(value.layer), "indices": value.indices, "values": value.values,
                  "by": np.array(value.by), "peaks": value.peaks}
        if value.positions is not None:
            arrays["positions"] = value.positions
    elif kind == "means":
        arrays = {"layer": np.array(value.layer), "means": value.means, "counts": value.counts}
    elif kind == "range":
        arrays = {"range": np.asarray(value, dtype=np.float64)}
    elif kind == "distances":
        arrays = {"distances": value}
    elif kind == "predictions":
        arrays = {"probabilities": value}
    else:
        raise InvalidInput(f"unknown statistic {kind!r}; kinds: {', '.join(KINDS)}")
    write_arrays(path, arrays)


def load_statistic(path: Path, kind: str) -> Any:
    """The statistic of ``kind`` stored at ``path``, or None when there is none or it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if kind.startswith("top-"):
                return TopUnits(str(data["layer"]), data["indices"], data["values"], str(data["by"]), data["peaks"],
                                data["positions"] if "positions" in data.files else None)
            if kind == "means":
                return ClassMeans(str(data["layer"]), data["means"], data["counts"])
            if kind == "range":
                low, high = (float(v) for v in data["range"])
                return (low, high)
            if kind == "distances":
                return data["distances"]
            if kind == "predictions":
                return data["probabilities"]
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    return None


class SharedStatistics(Protocol):
    """Statistics kept where every worker reads them, and computed there in the background (see
    :class:`app.jobs.statistics.StatisticsJobs`)."""

    def stored(self, loaded: LoadedModel, layer: str, kind: str) -> Any:
        """The stored statistic, or None."""

    def keep(self, loaded: LoadedModel, layer: str, kind: str, value: Any) -> None:
        """Store a statistic computed here, for every worker."""

    def job(self, loaded: LoadedModel, layer: str, kind: str) -> Any:
        """The background job computing it (started, or joined when running): a
        :class:`~app.jobs.background.LayerJob`."""


class StatisticsCache:
    """Bounded caches of whole-test-set statistics, keyed by model version and layer.

    Args:
        max_bytes: bytes per cache (a class-means entry is classes x layer size floats, 14 MB for a 26x26x512
            layer and 10 classes; a top-units entry k x units).
        maxsize: entries per cache.
    """

    def __init__(self, max_bytes: int = DEFAULT_STATISTICS_BYTES, maxsize: int = 32,
                 shared: SharedStatistics | None = None, in_request_flops: int = IN_REQUEST_FLOPS) -> None:
        self._means: LRUCache[ClassMeans] = LRUCache(maxsize, max_bytes)
        self._top: LRUCache[TopUnits] = LRUCache(maxsize, max_bytes)
        self._ranges: LRUCache[tuple[float, float]] = LRUCache(maxsize)
        self._distances: LRUCache[np.ndarray] = LRUCache(maxsize, max_bytes)
        self._predictions: LRUCache[np.ndarray] = LRUCache(maxsize, max_bytes)
        self.shared = shared
        self.in_request_flops = in_request_flops

    def cheap(self, loaded: LoadedModel, kind: str) -> bool:
        """Whether computing a statistic of ``kind`` costs at most :attr:`in_request_flops`: the whole model's
        forward FLOPs per image times the images it reads (:func:`images_read`), an upper bound for any layer."""
        if loaded.cost is None:
            return False
        return loaded.cost.flops * images_read(kind, loaded.engine.n_images) <= self.in_request_flops

    def _statistic(self, cache: LRUCache, kind: str, loaded: LoadedModel, layer: str,
                   compute: Callable[[], Any]) -> Any:
        """A statistic from memory; else from the shared store; else computed here when cheap (and shared); else
        its background job is started or joined and :class:`StillComputing` says how far it is."""

        def find() -> Any:
            if self.shared is None:
                return compute()
            stored = self.shared.stored(loaded, layer, kind)
            if stored is not None:
                return stored
            if self.cheap(loaded, kind):
                value = compute()
                self.shared.keep(loaded, layer, kind, value)
                return value
            job = self.shared.job(loaded, layer, kind)
            if job.status == "done":
                return job.result
            if job.status == "failed":
                raise Unavailable(f"computing {KINDS[kind]} of {layer} failed: {job.error} (tried again in a "
                                  "minute)")
            raise StillComputing(progress_sentence(KINDS[kind], layer, loaded.engine.n_images, job),
                                 job.progress())

        return cache.get_or_compute((*loaded.key, layer, kind), find)

    def class_means(self, loaded: LoadedModel, layer_name: str) -> ClassMeans:
        """Per-class mean output of ``layer_name`` for ``loaded`` (computed once per model version and layer)."""
        info = loaded.engine.layer(layer_name)
        return self._statistic(
            self._means, "means", loaded, info.name,
            lambda: compute_class_means(loaded.engine, loaded.labels, info.name, len(loaded.class_names)),
        )

    def class_distances(self, loaded: LoadedModel, layer_name: str) -> np.ndarray:
        """Every test image's distance to every class's mean output of ``layer_name`` (see
        :func:`~app.core.classes.compute_class_distances`): [N, classes], computed once per model version and
        layer."""
        info = loaded.engine.layer(layer_name)
        return self._statistic(
            self._distances, "distances", loaded, info.name,
            lambda: compute_class_distances(loaded.engine, self.class_means(loaded, info.name)),
        )

    def top_units(self, loaded: LoadedModel, layer_name: str, by: str = "mean") -> TopUnits:
        """The top :data:`MAX_TOP_K` images of every unit of ``layer_name`` (one pass, cached per version)."""
        info = loaded.engine.layer(layer_name)
        check_rank_by(by)
        return self._statistic(self._top, f"top-{by}", loaded, info.name,
                               lambda: compute_top_units(loaded.engine, info.name, MAX_TOP_K, by))

    def predictions(self, loaded: LoadedModel) -> np.ndarray:
        """Class probabilities of the whole test set, [N, classes] (see
        :meth:`~app.core.activations.ActivationEngine.predictions`), computed once per model version."""
        return self._statistic(self._predictions, "predictions", loaded, WHOLE_MODEL, loaded.engine.predictions)

    def layer_range(self, loaded: LoadedModel, layer_name: str) -> tuple[float, float]:
        """The fixed colour scale of ``layer_name`` (see :func:`~app.core.units.compute_layer_range`), computed
        once per model version and layer."""
        info = loaded.engine.layer(layer_name)
        return self._statistic(self._ranges, "range", loaded, info.name,
                               lambda: compute_layer_range(loaded.engine, info.name))

    def of_kind(self, loaded: LoadedModel, layer_name: str, kind: str) -> Any:
        """The statistic of ``kind`` (one of :data:`KINDS`) of ``layer_name`` (:data:`WHOLE_MODEL` for the
        predictions): what a background job is asked for by name."""
        if kind == "predictions":
            return self.predictions(loaded)
        if kind.startswith("top-"):
            return self.top_units(loaded, layer_name, kind.removeprefix("top-"))
        by_name = {"means": self.class_means, "distances": self.class_distances, "range": self.layer_range}
        if kind not in by_name:
            raise InvalidInput(f"unknown statistic {kind!r}; kinds: {', '.join(KINDS)}")
        return by_name[kind](loaded, layer_name)

    def clear(self) -> None:
        """Drop every cached result."""
        self._means.clear()
        self._top.clear()
        self._ranges.clear()
        self._distances.clear()

    def top_images(
        self, loaded: LoadedModel, layer_name: str, unit: int, k: int = 9, by: str = "mean"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` test images that activate ``unit`` of ``layer_name`` most: ``(indices, values)``, best first.

        Raises:
            LayerNotFound; InvalidInput for a bad unit, ``k`` or ``by``.
        """
        if not 1 <= k <= MAX_TOP_K:
            raise InvalidInput(f"k must be between 1 and {MAX_TOP_K}, got {k}")
        return self.top_units(loaded, layer_name, by).unit(unit, k)

    def dead_units(self, loaded: LoadedModel, layer_name: str) -> np.ndarray:
        """bool [units]: the units of ``layer_name`` that are 0 everywhere on the whole test set (what
        :meth:`is_dead` says of each; the Features page finds the same units with
        :func:`app.core.features.dead_units`)."""
        return self.top_units(loaded, layer_name).peaks == 0

    def dead_units_if_cheap(self, loaded: LoadedModel, layer_name: str) -> np.ndarray | None:
        """:meth:`dead_units` when they are known already (here or in the shared store) or a pass over the test
        set is :meth:`cheap`; else None, and nothing is computed or started: a side note never costs a pass."""
        info = loaded.engine.layer(layer_name)
        key = (*loaded.key, info.name, "top-mean")
        known = self._top.get(key)
        if known is None and self.shared is not None:
            known = self.shared.stored(loaded, info.name, "top-mean")
            if known is not None:  # kept here: read from disk once, not on every view of the layer
                self._top.put(key, known)
        if known is not None:
            return known.peaks == 0
        return self.dead_units(loaded, info.name) if self.cheap(loaded, "top-mean") else None

    def is_dead(self, loaded: LoadedModel, layer_name: str, unit: int) -> bool:
        """Whether ``unit`` of ``layer_name`` is 0 everywhere on the whole test set (see :meth:`TopUnits.is_dead`).

        Raises:
            LayerNotFound; InvalidInput for a bad unit.
        """
        return self.top_units(loaded, layer_name).is_dead(unit)




def progress_sentence(what: str, layer: str, images: int, job: Any) -> str:
    """``Computing the class means of Conv1 over 10,000 test images in the background: 35% (about 40 s left).``"""
    head = f"Computing {what}{'' if layer == WHOLE_MODEL else f' of {layer}'} over {images:,} test images in the " \
        "background"
    if job.status == "queued":
        return f"{head}: {job.stage}."
    left = job.seconds_left()
    share = f"{math.floor(job.fraction * 100)}%" if job.total else "starting"
    return f"{head}: {share}" + (f" (about {left:.0f} s left)." if left is not None else ".")
