"""Receptive fields: which input pixels a unit at a position of a layer sees, from the layer graph alone.

Walking the layers up to the chosen one, each convolution or pooling of kernel ``k`` (dilated: ``d * (k - 1) + 1``),
stride ``s`` and left padding ``p`` grows the field and its step between neighbouring positions (Araujo et al.,
"Computing Receptive Fields of Convolutional Neural Networks", Distill 2019)::

    size  += (k - 1) * jump
    start += ((k - 1) / 2 - p) * jump      # the centre of position 0's field, in input pixels
    jump  *= s

Layers that keep the map's size (activations, normalisation, dropout) change nothing; once the output is a vector
(Flatten, Dense, global pooling) or the map changes size in a way the walk does not know, every unit sees the
whole image. A model with parallel branches is walked in layer order, so its fields are an upper bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.core.layer_graph import LayerGraph


@dataclass(frozen=True)
class ReceptiveField:
    """The input pixels a unit of a layer sees, per axis (rows, columns).

    Attributes:
        size: the field's height and width in input pixels.
        jump: input pixels between the fields of neighbouring positions.
        start: the centre of position (0, 0)'s field, in input pixels (x.5 between two pixels).
        whole: every unit sees the whole image (a vector layer, or a layer the walk does not know).
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    whole: bool = False

    def boxes(self, rows: np.ndarray, cols: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """int [n, 4]: ``(top, bottom, left, right)`` (bottom and right exclusive) of the fields of positions
        (``rows[i]``, ``cols[i]``), clipped to the image; the whole image when :attr:`whole`."""
        height, width = image_size
        origins = self.origins(rows, cols)
        if self.whole:
            return np.tile(np.array([0, height, 0, width]), (len(origins), 1))
        tops, lefts = origins[:, 0], origins[:, 1]
        return np.stack([np.clip(tops, 0, height), np.clip(tops + self.size[0], 0, height),
                         np.clip(lefts, 0, width), np.clip(lefts + self.size[1], 0, width)], axis=1)

    def origins(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """int [n, 2]: the top-left input pixel of the fields of positions (``rows[i]``, ``cols[i]``), before
        clipping (negative above or left of the image); (0, 0) when :attr:`whole`."""
        rows, cols = np.asarray(rows).reshape(-1), np.asarray(cols).reshape(-1)
        if self.whole:
            return np.zeros((len(rows), 2), dtype=np.int64)
        return np.stack([np.rint(start + index * jump - (size - 1) / 2).astype(np.int64)
                         for index, size, jump, start in zip((rows, cols), self.size, self.jump, self.start,
                                                             strict=True)], axis=1)


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _padding_before(padding: str, size: int, kernel: int, stride: int) -> int:
    """Pixels added before the first one: none for ``valid``; for ``same``, half of what TensorFlow adds (the
    smaller half, the larger one goes after)."""
    if padding != "same":
        return 0
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2


def receptive_field(graph: LayerGraph, layer_name: str) -> ReceptiveField:
    """The receptive field of the units of ``layer_name`` (a name of ``graph.layers``; raises ValueError for
    another), walking the layers before it in the graph's order."""
    names = [info.name for info in graph.layers]
    if layer_name not in names:
        raise ValueError(f"no layer {layer_name!r} in the graph")
    image_shape = tuple(graph.inputs.shape[1:3])
    whole = ReceptiveField(image_shape, (1, 1), ((image_shape[0] - 1) / 2, (image_shape[1] - 1) / 2), True)
    size, jump, start = [1, 1], [1, 1], [0.0, 0.0]
    spatial = list(image_shape)
    for info, layer in zip(graph.layers[:names.index(layer_name) + 1], graph.layer_objects, strict=False):
        if not info.is_map:
            return whole
        kernel = getattr(layer, "kernel_size", None) or getattr(layer, "pool_size", None)
        if kernel is None:
            if list(info.output_shape[:2]) != spatial:
                return whole  # a layer that resizes the map in a way the walk does not know
            continue
        kernel, strides = _pair(kernel), _pair(getattr(layer, "strides", None) or kernel)
        dilation = _pair(getattr(layer, "dilation_rate", 1) or 1)
        padding = str(getattr(layer, "padding", "valid")).lower()
        for axis in (0, 1):
            extent = dilation[axis] * (kernel[axis] - 1) + 1
            before = _padding_before(padding, spatial[axis], extent, strides[axis])
            size[axis] += (extent - 1) * jump[axis]
            start[axis] += ((extent - 1) / 2 - before) * jump[axis]
            jump[axis] *= strides[axis]
        spatial = list(info.output_shape[:2])
    return ReceptiveField((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]))


def field_crops(images: np.ndarray, boxes: np.ndarray, origins: np.ndarray, size: tuple[int, int],
                fill: float) -> np.ndarray:
    """float32 [n, size[0], size[1], C]: ``images[i]`` cut to ``boxes[i]`` (:meth:`ReceptiveField.boxes`), placed
    where it lies in its whole field (whose top-left pixel is ``origins[i]``, :meth:`ReceptiveField.origins`), the
    part of the field outside the image filled with ``fill``: a field at the border is cut off there, not shifted
    or stretched."""
    count, channels = len(images), images.shape[-1]
    crops = np.full((count, size[0], size[1], channels), fill, dtype=np.float32)
    for index, (top, bottom, left, right) in enumerate(boxes):  # a handful of top images, not one per cell
        row, col = top - origins[index, 0], left - origins[index, 1]
        crops[index, row:row + bottom - top, col:col + right - left] = images[index, top:bottom, left:right]
    return crops
