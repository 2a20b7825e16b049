"""Bounded caches of whole-test-set statistics (class means, top units), keyed by model version and layer.

One instance per process lives in :mod:`app.services`; a new model version never sees an old result, and no cache
grows without bound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.core.cache import LRUCache
from app.core.classes import ClassMeans, compute_class_means
from app.core.errors import InvalidInput
from app.core.units import MAX_TOP_K, TopUnits, check_rank_by, compute_top_units

if TYPE_CHECKING:
    import numpy as np

    from app.core.store import LoadedModel

DEFAULT_STATISTICS_BYTES = 64 * 10**6


class StatisticsCache:
    """Bounded caches of whole-test-set statistics, keyed by model version and layer.

    Args:
        max_bytes: bytes per cache (a class-means entry is classes x layer size floats, 14 MB for a 26x26x512
            layer and 10 classes; a top-units entry k x units).
        maxsize: entries per cache.
    """

    def __init__(self, max_bytes: int = DEFAULT_STATISTICS_BYTES, maxsize: int = 32) -> None:
        self._means: LRUCache[ClassMeans] = LRUCache(maxsize, max_bytes)
        self._top: LRUCache[TopUnits] = LRUCache(maxsize, max_bytes)

    def class_means(self, loaded: LoadedModel, layer_name: str) -> ClassMeans:
        """Per-class mean output of ``layer_name`` for ``loaded`` (computed once per model version and layer)."""
        info = loaded.engine.layer(layer_name)
        return self._means.get_or_compute(
            (*loaded.key, info.name),
            lambda: compute_class_means(loaded.engine, loaded.labels, info.name, len(loaded.class_names)),
        )

    def top_units(self, loaded: LoadedModel, layer_name: str, by: str = "mean") -> TopUnits:
        """The top :data:`MAX_TOP_K` images of every unit of ``layer_name`` (one pass, cached per version)."""
        info = loaded.engine.layer(layer_name)
        check_rank_by(by)
        return self._top.get_or_compute(
            (*loaded.key, info.name, by), lambda: compute_top_units(loaded.engine, info.name, MAX_TOP_K, by)
        )

    def clear(self) -> None:
        """Drop every cached result."""
        self._means.clear()
        self._top.clear()

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

    def is_dead(self, loaded: LoadedModel, layer_name: str, unit: int) -> bool:
        """Whether ``unit`` of ``layer_name`` is 0 everywhere on the whole test set (see :meth:`TopUnits.is_dead`).

        Raises:
            LayerNotFound; InvalidInput for a bad unit.
        """
        return self.top_units(loaded, layer_name).is_dead(unit)


