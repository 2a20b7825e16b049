"""Where the model looks: one image's attribution for a class, as every face asks for it (Explore's overlay,
Compare's cards, the Features page's pair of classes, the API's ``attribution`` route).

:func:`explain` is the one orchestration: the method checked, the class resolved (-1: the class the model
predicts), an image whose pixels are not all finite refused, then :func:`app.core.attribution.attribute`, which
prices the request against the gradient budget before it starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core import attribution
from app.core.errors import InvalidInput
from app.core.store import LoadedModel
from app.views.images import ImageRef

PREDICTED = -1  # the class argument that stands for "the class the model predicts for this image"


@dataclass(frozen=True, eq=False)
class Explanation:
    """One attribution, with what it explains.

    Attributes:
        image: the image explained. method: the method (checked). target: the class explained.
        predicted: the class the model predicts for the image. result: the map and its numbers.
    """

    image: ImageRef
    method: str
    target: int
    predicted: int
    result: attribution.Attribution


def explain(loaded: LoadedModel, gradients: attribution.GradientModelCache, image: ImageRef, method: str,
            target: int = PREDICTED, layer: str | None = None, **options) -> Explanation:
    """The attribution of ``image`` by ``method`` for class ``target`` (:data:`PREDICTED`: the predicted class).

    Args:
        gradients: the process's gradient models (:attr:`app.context.AppContext.gradient_models`).
        layer: Grad-CAM's layer (default: :func:`app.core.attribution.default_cam_layer`); ignored by the other methods.
        options: ``samples``, ``noise`` (SmoothGrad), ``steps`` (integrated gradients).

    Raises:
        InvalidInput: an unknown method, a class the model lacks, pixels that are not all finite, a parameter out of
            range; OverBudget: a request over the gradient budget; LayerNotFound: no such layer.
    """
    method = attribution.check_method(method)
    n_classes = len(loaded.class_names)
    if not PREDICTED <= target < n_classes:
        raise InvalidInput(f"the class must be between 0 and {n_classes - 1} (or the predicted one), got {target}")
    if not np.isfinite(image.pixels).all():
        raise InvalidInput(f"{image.name} has pixels that are not finite numbers: no gradient to show")
    predicted = int(loaded.engine.probabilities(image.subject).argmax())
    explained = predicted if target == PREDICTED else target
    result = attribution.attribute(gradients.for_model(loaded), image.pixels, method, explained, layer, **options)
    return Explanation(image, method, explained, predicted, result)
