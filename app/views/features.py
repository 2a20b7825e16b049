"""The Features page's view: what each unit of a layer responds to most (its optimal input), and where the model
looks in one test image (an attribution method, for a class or two classes side by side, with Grad-CAM's layer);
one unit's optimal input (:func:`unit_optimal_input`) and a whole layer's (:func:`layer_optimal_inputs`), for the
page and the API alike.

A :class:`FeaturesView` is the whole state of the page; it reads itself from a link's query
(:meth:`FeaturesView.from_query`) and writes the query that reopens it (:meth:`FeaturesView.to_query`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.attribution import METHODS, GradientModelCache
from app.core.errors import Conflict
from app.core.features import UnitFeature, unit_feature, unit_of
from app.core.receptive_field import ReceptiveField, field_crops, receptive_field
from app.core.statistics import StatisticsCache
from app.core.store import LoadedModel
from app.jobs.features import FeatureJobs, LayerJob
from app.views.query import LinkView, choice_value, flag_value, name_value, number_value, query_of

# The classes shown side by side unless the link says others: the blog's 4 that looks like a 9.
DEFAULT_PAIR = (4, 9)


@dataclass(frozen=True)
class FeaturesView(LinkView):
    """What the Features page shows, as its link says it.

    Attributes:
        model, layer: names (None: the page's defaults); checked against the store when the view is drawn.
        image: the test image of the attribution.
        method: one of :data:`app.core.attribution.METHODS`.
        target: the class explained (None: the predicted class).
        cam: Grad-CAM's layer (None: the page's default, :func:`app.core.attribution.default_cam_layer`).
        pair: whether two classes are explained side by side (instead of ``target`` alone).
        pair_a, pair_b: the classes on the left and on the right (:data:`DEFAULT_PAIR` unless chosen; a model
            without them shows its first two).
        unit: the unit whose optimal input, activation and top images are shown (None: none chosen).
    """

    model: str | None = None
    layer: str | None = None
    image: int = 0
    method: str = METHODS[0]
    target: int | None = None
    cam: str | None = None
    pair: bool = False
    pair_a: int = DEFAULT_PAIR[0]
    pair_b: int = DEFAULT_PAIR[1]
    unit: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[FeaturesView, list[str]]:
        """The view a link's query asks for, and a sentence per value that could not be read (it falls back)."""
        notices: list[str] = []
        image = number_value(query, "image", "Image", notices, "showing 0")
        pair_a = number_value(query, "pair_a", "Left class", notices, f"showing class {DEFAULT_PAIR[0]}")
        pair_b = number_value(query, "pair_b", "Right class", notices, f"showing class {DEFAULT_PAIR[1]}")
        return cls(
            model=name_value(query, "model"), layer=name_value(query, "layer"), image=0 if image is None else image,
            method=choice_value(query, "method", METHODS),
            target=number_value(query, "target", "Class", notices, "explaining the predicted class"),
            cam=name_value(query, "cam"), pair=flag_value(query, "pair"),
            pair_a=DEFAULT_PAIR[0] if pair_a is None else pair_a, pair_b=DEFAULT_PAIR[1] if pair_b is None else pair_b,
            unit=number_value(query, "unit", "Unit", notices, "no unit chosen"),
        ), notices

    def to_query(self) -> str:
        """``?model=…&layer=…&image=…&method=…&pair=1&pair_a=3&pair_b=8``: the query that reopens this view (the
        pair's classes only where they are not the default 4 and 9, to keep links short)."""
        return query_of({"model": self.model, "layer": self.layer, "image": self.image, "method": self.method,
                         "target": self.target, "cam": self.cam, "pair": self.pair,
                         "pair_a": None if self.pair_a == DEFAULT_PAIR[0] else self.pair_a,
                         "pair_b": None if self.pair_b == DEFAULT_PAIR[1] else self.pair_b, "unit": self.unit})


def layer_optimal_inputs(jobs: FeatureJobs, loaded: LoadedModel, layer_name: str) -> LayerJob:
    """The visualisation of a whole layer: done (with its result) or under way in the background (its progress),
    started by the first viewer who asks.

    Raises:
        Conflict: its last attempt failed (it is tried again a minute later).
    """
    job = jobs.get(loaded.name, loaded.version, layer_name)
    if job.status == "failed":
        raise Conflict(f"The visualisation of {layer_name} failed: {job.error}. It is tried again in a minute.")
    return job


def progress_sentence(job: LayerJob, layer_name: str) -> str:
    """What a layer's background visualisation is doing, as the page's progress bar says it: ``Optimising the
    inputs of Conv2D_2: step 48 of 128 (64 units at once).``; while the process starts or finds the dead units
    (no steps yet), that stage in words."""
    if job.status == "queued":
        return f"{layer_name} waits for another layer's visualisation to finish; it starts right after."
    if job.status == "done":
        return f"The optimal inputs of {layer_name} are ready."
    if not job.total:
        doing = job.stage or "starting a background process (a few seconds)"
        return f"Computing the optimal inputs of {layer_name}: {doing}…"
    return (f"Optimising the inputs of {layer_name}: step {min(job.done, job.total)} of {job.total}"
            + (f" ({job.stage})." if job.stage else "."))


@dataclass(frozen=True)
class ShownUnitFeature:
    """One unit's optimal input and where it came from: ``"stored"`` (its layer's visualisation, computed once in
    the background) or ``"computed"`` (optimised for this request alone)."""

    feature: UnitFeature
    source: str


def unit_optimal_input(jobs: FeatureJobs, statistics: StatisticsCache, gradients: GradientModelCache,
                       loaded: LoadedModel, layer_name: str, unit: int) -> ShownUnitFeature:
    """The optimal input of ``unit`` of ``layer_name``: the stored layer visualisation's when there is one, else
    optimised now, its objective scaled by the unit's largest output over the test set."""
    stored = jobs.cached(loaded.name, loaded.version, layer_name)
    if stored is not None:
        return ShownUnitFeature(unit_of(stored, unit), "stored")
    largest = float(statistics.top_units(loaded, layer_name, "max").values[0, unit])
    return ShownUnitFeature(unit_feature(gradients.for_model(loaded), layer_name, unit, largest), "computed")


TOP_CROPS = 9


@dataclass(frozen=True)
class UnitCrops:
    """The test images that drive one unit highest (by its largest value anywhere in the map), each cut to the
    unit's receptive field around the position of that value, as Microscope's dataset examples.

    Attributes:
        crops: float32 [k, field height, field width, C]; NaN where the field runs past the image's border.
        indices, values: the images' numbers and the unit's largest value on each, best first.
        field: the unit's receptive field (``whole`` for a node: the whole image).
    """

    crops: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    field: ReceptiveField


def unit_top_crops(statistics: StatisticsCache, loaded: LoadedModel, layer_name: str, unit: int,
                   k: int = TOP_CROPS) -> UnitCrops:
    """The ``k`` test images that activate ``unit`` of ``layer_name`` most (the cached whole-test-set ranking by
    max, :meth:`~app.core.statistics.StatisticsCache.top_units`), cropped to its receptive field around where each
    peaks.

    Raises:
        LayerNotFound; InvalidInput for a bad unit or ``k``.
    """
    info = loaded.engine.layer(layer_name)
    indices, values = statistics.top_images(loaded, info.name, unit, k, "max")
    top = statistics.top_units(loaded, info.name, "max")
    positions = top.positions[:len(indices), unit]
    field = receptive_field(loaded.engine.graph, info.name)
    map_width = info.output_shape[1] if info.is_map else 1
    rows, cols = positions // map_width, positions % map_width
    boxes = field.boxes(rows, cols, loaded.images.shape[1:3])
    crops = field_crops(loaded.images[indices], boxes, field.origins(rows, cols), field.size, np.nan)
    return UnitCrops(crops, indices, values, field)
