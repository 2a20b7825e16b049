"""The drawing pad: a canvas to draw a digit on, Clear and Undo, an upload, a centring switch and the "what the model
sees" preview, as one reusable component with ids derived from a page prefix.

The drawing itself runs in the browser (``assets/drawing_pad.js`` attaches to every ``.drawing-pad`` container and
writes the strokes into the pad's ``dcc.Store`` when the pointer lifts); a page's callback takes the store's data
and calls :func:`pad_image` (or :func:`upload_image` for ``dcc.Upload`` contents), which preprocess the picture for
the model and store it, giving the ``u:<id>`` the page puts in its URL.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import dash_bootstrap_components as dbc
from dash import dcc, html

from app.context import app_context
from app.core.errors import InvalidInput, TooLarge
from app.core.user_images import UserImage, add_drawing, add_upload

PAD_PX = 280
# A pen about as wide as MNIST's strokes once the digit is scaled into its 20 px box (2-3 px of 20).
PEN_PX = 18
PREVIEW_PX = 112
UPLOAD_ACCEPT = "image/png,image/jpeg,image/gif,image/bmp,image/webp"


@dataclass(frozen=True)
class DrawingPadIds:
    """The component ids of one pad.

    Attributes:
        pad: the container the script draws its canvas in.
        strokes: the ``dcc.Store`` whose ``data`` is ``{"strokes": [[[x, y], ...], ...], "width", "size"}`` after
            every stroke, Clear and Undo (an empty ``strokes`` list after Clear or the last Undo).
        clear, undo: the buttons (handled in the browser; their ``n_clicks`` still count).
        upload: a ``dcc.Upload`` of one or more pictures (``contents``, ``filename``).
        centre: the switch of MNIST's crop and centring (``value``: True or False).
        preview: the ``<img>`` to show what the model sees (``src``).
        message: where to say what went wrong (``children``).
    """

    pad: str
    strokes: str
    clear: str
    undo: str
    upload: str
    centre: str
    preview: str
    message: str


def drawing_pad_ids(prefix: str) -> DrawingPadIds:
    """The ids of the pad of a page whose ids start with ``prefix`` (e.g. ``explore`` -> ``explore-pad``)."""
    return DrawingPadIds(*(f"{prefix}-{part}" for part in
                           ("pad", "pad-strokes", "pad-clear", "pad-undo", "pad-upload", "pad-centre", "pad-preview",
                            "pad-message")))


def drawing_pad(prefix: str, size: int = PAD_PX, pen: int = PEN_PX) -> html.Div:
    """The pad's component tree: canvas container, store, Clear/Undo, upload, centring switch, preview, message."""
    ids = drawing_pad_ids(prefix)
    buttons = html.Div(
        [
            # html.Button: dbc.Button takes no data-* attributes, and the script finds its pad through them
            html.Button("Undo", id=ids.undo, type="button", className="btn btn-sm btn-outline-secondary me-2",
                        **{"data-pad": ids.pad, "data-pad-action": "undo"}),
            html.Button("Clear", id=ids.clear, type="button", className="btn btn-sm btn-outline-secondary me-2",
                        **{"data-pad": ids.pad, "data-pad-action": "clear"}),
            dcc.Upload(dbc.Button("Upload a picture…", size="sm", color="secondary", outline=True), id=ids.upload,
                       accept=UPLOAD_ACCEPT, multiple=True, max_size=upload_limit(),
                       className="d-inline-block"),
        ],
        className="d-flex flex-wrap align-items-center mt-2",
    )
    preview = html.Figure(
        [
            html.Img(id=ids.preview, alt="What the model sees", width=PREVIEW_PX, height=PREVIEW_PX,
                     className="drawing-pad-preview"),
            html.Figcaption("What the model sees", className="small text-muted"),
        ],
        className="ms-3 mb-0",
    )
    return html.Div(
        [
            html.Div(
                [
                    html.Div(id=ids.pad, className="drawing-pad", **{"data-store": ids.strokes,
                                                                     "data-size": str(size), "data-pen": str(pen)}),
                    preview,
                ],
                className="d-flex flex-wrap align-items-start",
            ),
            buttons,
            dbc.Checkbox(id=ids.centre, value=True, className="mt-2",
                         label="Crop and centre the digit as MNIST did (off: a plain resize)"),
            html.Div(id=ids.message, role="status", className="small mt-1"),
            dcc.Store(id=ids.strokes, data=None),
        ],
        className="drawing-pad-area",
    )


def upload_limit() -> int:
    """The largest picture the pad's upload takes: it travels base64-encoded (4/3 of its size) in a callback
    request, which ``MAX_REQUEST_BYTES`` bounds; larger pictures go to ``POST /api/models/<name>/inputs``."""
    settings = app_context().settings
    return max(1, min(settings.max_image_bytes, settings.max_request_bytes * 3 // 4 - 16_384))


def pad_image(loaded, data: dict | None, centre: bool = True) -> UserImage | None:
    """The pad's store data as a stored image of ``loaded`` (None for an empty pad: nothing drawn or all cleared).

    Raises:
        InvalidInput: malformed data (the store is written by the browser: anything may arrive).
    """
    if not data:
        return None
    if not isinstance(data, dict):
        raise InvalidInput("the drawing pad sent something that is not a drawing")
    if not data.get("strokes"):
        return None
    return add_drawing(app_context().user_images, loaded, data["strokes"], data.get("width"), data.get("size"),
                       centre=bool(centre))


def upload_image(loaded, contents: str, centre: bool = True) -> UserImage:
    """One ``dcc.Upload`` ``contents`` (a ``data:<type>;base64,...`` URL) as a stored image of ``loaded``.

    Callback requests are bounded by ``MAX_REQUEST_BYTES`` (1 MB by default): a larger photo should be posted to
    ``POST /api/models/<name>/inputs`` instead, which takes up to ``MAX_IMAGE_BYTES``.

    Raises:
        InvalidInput, TooLarge: not a base64 data URL, or not a usable picture.
    """
    header, comma, payload = (contents or "").partition(",")
    if not comma or not header.startswith("data:") or not header.endswith(";base64"):
        raise InvalidInput("the upload is not a base64 data URL")
    limit = app_context().settings.max_image_bytes
    if len(payload) > limit * 4 // 3 + 4:
        raise TooLarge(f"the picture is larger than {limit:,} bytes (MAX_IMAGE_BYTES)")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("the upload is not valid base64") from None
    return add_upload(app_context().user_images, loaded, data, limit, centre=bool(centre))
