"""The "Why this prediction?" view (the MLP view): for one image, how each node of a vector layer pushes the output
layer's logits of two classes (activation × weight), which adds up, with the bias, to the logits behind the
probabilities.

A :class:`WhyView` is the whole state of the page; it reads itself from a link's query (:meth:`WhyView.from_query`)
and writes the query that reopens it (:meth:`WhyView.to_query`). The page and the API's ``contributions`` route ask
:func:`why` for what the view shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.core.contributions import Contributions, contributions, logit_layers
from app.core.errors import InvalidInput
from app.core.store import LoadedModel, ModelStore
from app.core.user_images import UserImageStore, names_user_image
from app.views.explore import numbered_test_image
from app.views.images import ImageRef, image_ref
from app.views.query import LinkView, image_value, name_value, number_value, query_of


@dataclass(frozen=True)
class WhyView(LinkView):
    """What the "Why this prediction?" page shows, as its link says it.

    Attributes:
        model: the model's name (None: the page's default); checked against the store when the view is drawn.
        layer: the vector layer whose nodes push the logits (None: the last one feeding the output layer).
        image: a test-image number, or a user image's id ``u:<id>`` (None: left out of the link, image 0).
        a, b: the two classes whose logits are explained (None: the predicted class, and the runner-up).
    """

    model: str | None = None
    layer: str | None = None
    image: int | str | None = 0
    a: int | None = None
    b: int | None = None

    @classmethod
    def from_query(cls, query: Mapping[str, Any]) -> tuple[WhyView, list[str]]:
        """The view a link's query asks for, and a sentence per value that could not be read (it falls back)."""
        notices: list[str] = []
        image = image_value(query, "image", notices, "showing 0")
        return cls(
            model=name_value(query, "model"), layer=name_value(query, "layer"), image=0 if image is None else image,
            a=number_value(query, "a", "Class", notices, "explaining the predicted class"),
            b=number_value(query, "b", "Class", notices, "comparing with the runner-up"),
        ), notices

    def to_query(self) -> str:
        """``?model=…&layer=…&image=12&a=4&b=9``: the query that reopens this view (``image=0`` kept; the classes only
        when chosen)."""
        return query_of({"model": self.model, "layer": self.layer, "image": self.image, "a": self.a, "b": self.b})


@dataclass(frozen=True, eq=False)
class WhyResult:
    """What a :class:`WhyView` shows, as plain data.

    Attributes:
        loaded: the model. image: the image explained. probabilities: its class probabilities.
        contributions: activation × weight of every node of the layer to the logits of the two classes, the biases
            and the logits (:class:`app.core.contributions.Contributions`).
        classes_are_outputs: whether the layer feeds the output layer (its units are the classes) rather than a
            hidden Dense layer (possible through the API only).
    """

    loaded: LoadedModel
    image: ImageRef
    probabilities: np.ndarray
    contributions: Contributions
    classes_are_outputs: bool

    @property
    def predicted(self) -> int | None:
        """The class the model predicts (None when its output is not finite)."""
        return int(self.probabilities.argmax()) if np.isfinite(self.probabilities).all() else None


def default_layer(loaded: LoadedModel) -> str:
    """The layer the view opens on: the last vector layer feeding the output layer (``Dense_1`` of the blog's CNN).

    Raises:
        InvalidInput: the model has none (its output layer is not a Dense layer fed by a vector).
    """
    layers = logit_layers(loaded)
    if not layers:
        raise InvalidInput(f"Model {loaded.name!r} has no vector layer feeding a Dense output layer: there are no "
                           "node contributions to show.")
    return layers[-1]


def top_two(probabilities: np.ndarray) -> tuple[int, int]:
    """The predicted class and the runner-up (classes 0 and 1 when the output is not finite)."""
    if len(probabilities) < 2 or not np.isfinite(probabilities).all():
        return 0, 1
    first, second = np.argsort(-probabilities, kind="stable")[:2]
    return int(first), int(second)


def shown_image(loaded: LoadedModel, raw: Any, user_images: UserImageStore) -> ImageRef:
    """The image a view or a request names: ``u:<id>`` for the user's own, else a test-image number (an empty box
    is asked for a number in range, never "got None").

    Raises:
        InvalidInput: malformed. NotFound: out of range, or no such user image.
    """
    if names_user_image(raw):
        return image_ref(loaded, raw, user_images, "your image")
    return numbered_test_image(loaded, raw)


def why(store: ModelStore, user_images: UserImageStore, view: WhyView) -> WhyResult:
    """What ``view`` shows: its image's probabilities and the contributions of its layer's nodes to the logits of
    classes ``a`` and ``b`` (the predicted class and the runner-up when not chosen).

    Raises:
        ExplorerError: no such model (or a broken one), no such layer or one without contributions, a malformed or
            unknown image, a class out of range.
    """
    if not view.model:
        raise InvalidInput("Choose a model.")
    loaded = store.get(view.model)
    layer = loaded.engine.layer(view.layer).name if view.layer else default_layer(loaded)
    image = shown_image(loaded, view.image, user_images)
    probabilities = loaded.engine.probabilities(image.subject)
    first, second = top_two(probabilities)
    a = first if view.a is None else view.a
    b = (second if a == first else first) if view.b is None else view.b
    result = contributions(loaded, layer, image.subject, (a, b))
    output = loaded.model.layers[-1].name if loaded.model.layers else None
    return WhyResult(loaded, image, probabilities, result, result.target == output)
