"""The explorer's view as one answer: what Explore draws for a view, for the browser's own drawing of a stepped
image (``assets/image_stepping.js``) and for anyone who wants the figures of a view."""

from __future__ import annotations

from flask import Response, request
from plotly.io.json import to_json_plotly

from app.api.blueprint import api
from app.api.models import checked_version
from app.context import app_context
from app.core.errors import InvalidInput
from app.core.grid import COLORMAPS
from app.ui.explorer_answer import explorer_answer
from app.views.explore import ExploreView

# The longest query a view's link can have is far below this; a longer one is refused before it is parsed.
MAX_QUERY_CHARS = 2_000


@api.get("/api/models/<name>/explorer-view")
def get_explorer_view(name: str):
    """What Explore draws for the view its query describes (the keys of Explore's links: ``layer``, ``image``
    (a number or ``u:<id>``), ``cmap``, ``reverse``, ``scale``, ``fixed``, ``unit``, ``page``, ``order``), as
    JSON: ``heatmap``, ``input`` and ``probabilities`` (Plotly figures, the same the page's render draws),
    ``caption`` (the line under the image, as Dash components), ``query`` (the link of the view drawn, without the
    unit) and ``image``. A value the page would replace by a default is a 400 here; ``version`` (optional): 409
    if the model changed since. 202 while the layer's fixed colour scale is computed."""
    if len(request.query_string) > MAX_QUERY_CHARS:
        raise InvalidInput(f"the query is longer than {MAX_QUERY_CHARS} characters")
    loaded = app_context().store.get(name)
    checked_version(loaded)
    asked = {key: value for key, value in request.args.items() if key != "version"}
    view, notices = ExploreView.from_query({**asked, "model": name})
    if asked.get("cmap", view.cmap) != view.cmap:
        notices.append(f"cmap must be one of {', '.join(COLORMAPS)}.")
    if notices:
        raise InvalidInput(" ".join(notices))
    answer = explorer_answer(app_context(), view, prefetch_neighbours=False)
    body = to_json_plotly({"image": view.image, "query": answer.query, "heatmap": answer.heatmap,
                           "input": answer.input_image, "probabilities": answer.probabilities,
                           "caption": answer.caption})
    # the same URL answers differently once the model is replaced: the browser keeps its own few answers
    return Response(body, mimetype="application/json", headers={"Cache-Control": "no-store"})
