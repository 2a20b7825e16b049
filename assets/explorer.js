// Clientside helpers: the address bar follows the view (Back and Forward move through views), the navigation bar
// follows the user's place, the keyboard steps through images on Explore, and "Copy link" copies the URL.
(function () {
    var PLACE_KEYS = ["model", "layer", "cmap", "image"];

    // Test-image numbers and the ids of the user's own images (u: and 20 hex digits).

    // The place a page's query describes, merged into the previous one: a page without a layer (Find images)
    // keeps the layer the user had; Compare's place image is its first image.
    function mergePlace(previous, query) {
        var params = new URLSearchParams(query || "");
        var place = Object.assign({}, previous || {});
        if (params.has("model") && params.get("model") !== place.model && !params.has("layer")) { delete place.layer; }
        PLACE_KEYS.forEach(function (key) { if (params.has(key)) { place[key] = params.get(key); } });
        if (params.has("images")) { place.image = params.get("images").split(",")[0]; }
        return place;
    }

    function setProps(id, props) {
        if (window.dash_clientside && window.dash_clientside.set_props) { window.dash_clientside.set_props(id, props); }
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        explorer: {
            // The explorer's ◀ ▶ and random buttons (app/pages/explore.py): the next image number, found here so a
            // click costs one round trip (the render's). Previous/next wrap around; a malformed number counts as 0.
            // The chosen unit's outline on activation grids (app/ui/unit_panel.py register_unit_outline): the
            // figure's first shape moved to the unit, found from the grid's meta (its unit height and width, units
            // per row and count), here in the browser; ``figures`` is one figure or, for a grid per image, a list.
            outlineUnit: function (unit, figures) {
                const noUpdate = window.dash_clientside.no_update;
                const chosen = unit && Number.isInteger(unit.unit) ? unit.unit : null;
                const outline = function (figure) {
                    const meta = figure && figure.data && figure.data.length ? figure.data[0].meta : null;
                    if (!meta || !Array.isArray(meta.grid) || !figure.layout) { return noUpdate; }
                    const height = meta.grid[0], width = meta.grid[1], cols = meta.grid[2], count = meta.grid[3];
                    let shape = {type: "rect", visible: false, x0: 0, x1: 0, y0: 0, y1: 0};
                    // a page of a layer's maps holds the maps `meta.units` (true numbers): the chosen one's place
                    const place = chosen === null ? null
                        : (Array.isArray(meta.units) ? meta.units.indexOf(chosen) : chosen);
                    if (place !== null && place >= 0 && place < count) {
                        const x0 = (place % cols) * width - 0.5, y0 = Math.floor(place / cols) * height - 0.5;
                        shape = {type: "rect", x0: x0, x1: x0 + width, y0: y0, y1: y0 + height,
                                 line: {color: meta.outline, width: 3}, fillcolor: "rgba(0,0,0,0)"};
                    }
                    const shapes = (figure.layout.shapes || []).slice();
                    shapes[0] = shape;
                    return Object.assign({}, figure, {layout: Object.assign({}, figure.layout, {shapes: shapes})});
                };
                return Array.isArray(figures) ? figures.map(outline) : outline(figures);
            },
            // Explore's page controls (app/pages/explore.py PAGING) for the grid drawn, from its meta's `page` and
            // `units` (app/figures/grids.py mark_page): [hidden, "maps 65–128 of 1,280", the page store, previous
            // disabled, next disabled]; hidden for a layer of one page.
            pageControls: function (figure) {
                if (window.imageStepping) { window.imageStepping.gridDrawn(figure); }
                const meta = figure && figure.data && figure.data.length ? figure.data[0].meta : null;
                const page = meta && meta.page;
                if (!page || !Array.isArray(meta.units)) {
                    return [true, "", null, true, true];
                }
                const number = function (value) { return Number(value).toLocaleString("en-US"); };
                return [false, `maps ${number(page.first)}–${number(page.last)} of ${number(page.of)}`,
                        {page: page.page, pages: page.pages, per_row: page.per_row, units: meta.units},
                        page.page <= 1, page.page >= page.pages];
            },
            // The ◀ ▶ and random buttons of Explore and "Why this prediction?" (app/ui/page.py
            // register_image_stepping): the next image number, found here so a click costs at most one round trip.
            // Previous/next wrap around; a malformed number counts as 0. With the view drawn (`view`, Explore) and
            // no own image shown, the browser draws the new image itself (assets/image_stepping.js).
            stepImage: function (_previous, _next, _random, current, maximum, view, own) {
                const whole = function (value) {
                    if (typeof value === "number" && Number.isInteger(value)) {
                        return value;
                    }
                    return typeof value === "string" && /^\s*\d+\s*$/.test(value) ? parseInt(value, 10) : 0;
                };
                const count = Math.max(whole(maximum), 0) + 1;
                const triggered = window.dash_clientside.callback_context.triggered;
                const button = triggered.length ? triggered[0].prop_id.split(".")[0] : "";
                // <page>-previous, <page>-next, <page>-random
                const random = /-random$/.test(button);
                const step = /-previous$/.test(button) ? -1 : 1;
                const image = random ? Math.floor(Math.random() * count)
                    : (((whole(current) + step) % count) + count) % count;
                if (view !== undefined && !(own && own.id) && window.imageStepping) {
                    window.imageStepping.step(image, view, random ? 0 : step, count);
                }
                return image;
            },
            // Explore's image box asks the render callback for its number, unless the browser draws it (a step).
            askImage: function (image) {
                if (window.imageStepping && window.imageStepping.drawsHere(image)) {
                    return window.dash_clientside.no_update;
                }
                return {image: image, at: Date.now()};
            },
            // Explore's image box: [invalid, its tooltip]: invalid when it holds no test image's number.
            checkImageBox: function (image, maximum) {
                const top = Number.isInteger(maximum) && maximum >= 0 ? maximum : null;
                const range = top === null ? "a test image number" : `a test image number, 0-${top}`;
                const valid = Number.isInteger(image) && top !== null && image >= 0 && image <= top;
                return [!valid, range];
            },
            // A new image for Explore's attribution overlay, only while a method is on.
            attributionImage: function (image, own, method) {
                return method ? {image: image, own: own, at: Date.now()} : window.dash_clientside.no_update;
            },
            // The explorer's own image (a drawing or upload, app/pages/explore.py OWN_IMAGE) left for the test image
            // now in the number box; nothing changes (no new render) while none is shown or the number is the one
            // the box held when it was shown.
            // While the user's own image is shown, the test-image box's number is not what is shown: it is dimmed
            // and a line under it says how to go back. Returns [the box's class, the line].
            ownImageNote: function (own) {
                if (!own || !own.id) { return ["", ""]; }
                return ["own-image-shown", "Your image is shown: type a number or step for the test images."];
            },
            leaveOwnImage: function (image, own) {
                if (!own || own.over === image) {
                    return window.dash_clientside.no_update;
                }
                return null;
            },
            // A page's query string into the address bar: replaced for a freshly built page (sink not yet set),
            // pushed for every later change, so Back returns to the previous view.
            syncQuery: function (query, sink, place) {
                if (typeof query !== "string") { return window.dash_clientside.no_update; }
                if (window.location.search !== query) {
                    var url = window.location.pathname + query;
                    if (sink === null || sink === undefined) {
                        window.history.replaceState(window.history.state, "", url);
                    } else {
                        window.history.pushState({}, "", url);
                    }
                }
                setProps("app-place", {data: mergePlace(place, query)});
                return query;
            },
            // A unit panel opened by a click (app/ui/unit_panel.py) scrolled into view once drawn: all of it when it
            // fits the window, else from its top.
            scrollUnitPanel: function (children, unit, panelId) {
                if (!children || (Array.isArray(children) && !children.length) || !unit || unit.clicked !== true) {
                    return window.dash_clientside.no_update;
                }
                window.requestAnimationFrame(function () {
                    var panel = document.getElementById(panelId);
                    if (panel) {
                        var fits = panel.getBoundingClientRect().height <= window.innerHeight;
                        panel.scrollIntoView({block: fits ? "nearest" : "start"});
                    }
                });
                return unit.unit;
            },
            // The "Copy link" button (app/ui/copy_link.py): returns [feedback, the link field's value, its class].
            copyLink: function () {
                const hidden = "visually-hidden";
                const url = window.location.href;
                clearTimeout(window.explorerCopyLinkTimer);
                const copied = function () {
                    window.explorerCopyLinkTimer = setTimeout(function () {
                        window.dash_clientside.set_props("copy-link-feedback", {children: ""});
                    }, 2000);
                    return ["Link copied", url, hidden];
                };
                // Without the Clipboard API (plain HTTP to another host) or when it is refused: select the link in a
                // scratch text field and copy the selection. Not in the page's own link field: measured in chromium,
                // copying from a dcc.Input whose value was set from script copies an empty string.
                const fallback = function () {
                    const scratch = document.createElement("textarea");
                    scratch.value = url;
                    scratch.readOnly = true;
                    scratch.className = hidden;
                    document.body.appendChild(scratch);
                    scratch.focus();
                    scratch.select();
                    let ok = false;
                    try {
                        ok = document.execCommand("copy");
                    } catch (error) {
                        ok = false;
                    } finally {
                        document.body.removeChild(scratch);
                        document.getElementById("copy-link").focus();
                    }
                    // Refused too: show the link for the user to copy by hand.
                    return ok ? copied() : ["Copy this link:", url, "form-control form-control-sm ms-2"];
                };
                if (navigator.clipboard && window.isSecureContext) {
                    return navigator.clipboard.writeText(url).then(copied, fallback);
                }
                return fallback();
            },
        },
    });

    // Back and Forward: view changes were pushed without telling Dash's location component, whose props may still
    // hold the popped URL; setting them here (before the component compares) makes the page router rebuild the view.
    // The basket is not part of a view (it lives in the browser's store only), so Back never drops a pick.
    window.addEventListener("popstate", function () {
        var here = window.location;
        setProps("_pages_location", {pathname: here.pathname, search: here.search, hash: here.hash, href: here.href});
    });

    // Explore's keyboard: ←/→ previous/next image, r random; never while typing in a text box.
    var KEYS = {ArrowLeft: "explore-previous", ArrowRight: "explore-next", r: "explore-random"};
    document.addEventListener("keydown", function (event) {
        if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) { return; }
        var target = event.target;
        if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) { return; }
        var button = KEYS[event.key] && document.getElementById(KEYS[event.key]);
        if (button) {
            event.preventDefault();
            button.click();
        }
    });
})();
