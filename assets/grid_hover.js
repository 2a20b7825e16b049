// The hover label of every activation grid (app/figures/grids.py, activation_heatmap): the map or node under the
// pointer, its row and column in that map and the cell's exact value, derived here from the cell's x/y and the grid
// layout the trace carries in its `meta` ({grid: [unit height, unit width, units per row, units], unit, names}, and
// for a page of a layer's maps `units`, the true map number of each place).
// Plotly's own label would need three numbers per cell shipped with every view (173 kB of a 297 kB view).
// A grid sent as 8-bit colour codes (`meta.values`, `meta.range`, `meta.levels`) has its exact float32 values at
// the URL `meta.values`: fetched once per grid on its first hover; until they arrive the label shows the value the
// code stands for, marked "≈".
(function () {
    "use strict";
    const LABEL_CLASS = "grid-hover";
    let label = null;
    let owner = null;  // the graph whose cell the label describes
    let shown = null;  // the hover event the label describes, to write it again when exact values arrive
    const exactValues = new Map();  // values URL -> Float32Array, or null while it loads; the newest few kept
    const KEPT_GRIDS = 4;

    // The shortest decimal that reads back as the same float32: the value numpy prints for the engine's number.
    function float32Text(value) {
        for (let digits = 1; digits < 10; digits++) {
            const candidate = Number(value.toPrecision(digits));
            if (Math.fround(candidate) === value) {
                return String(candidate);
            }
        }
        return String(value);
    }

    // The grid's exact values if they have arrived; starts fetching them otherwise.
    function valuesOf(meta) {
        const url = meta.values;
        if (exactValues.has(url)) {
            return exactValues.get(url);
        }
        exactValues.set(url, null);
        while (exactValues.size > KEPT_GRIDS) {
            exactValues.delete(exactValues.keys().next().value);
        }
        fetch(url, {credentials: "same-origin"})
            .then(function (response) {
                if (!response.ok) {
                    throw new Error(`${response.status} from ${url}`);
                }
                return response.arrayBuffer();
            })
            .then(function (buffer) {
                exactValues.set(url, new Float32Array(buffer));
                if (shown && label && label.style.display !== "none") {
                    show(shown);
                }
            })
            .catch(function () {
                exactValues.delete(url);  // the label keeps the approximate value; the next hover tries again
            });
        return null;
    }

    // The value of cell (x, y): exact, or "≈" the value its colour code stands for while the exact ones load.
    function valueText(meta, x, y, z) {
        if (!meta.values) {
            return float32Text(z);
        }
        const values = valuesOf(meta);
        const width = meta.grid[1] * meta.grid[2];
        if (values && values.length === width * Math.round(values.length / width)) {
            return float32Text(values[y * width + x]);
        }
        const [low, high] = meta.range;
        return `≈ ${Number((low + z * (high - low) / meta.levels).toPrecision(3))}`;
    }

    // [first line, second line] for the cell (x, y) of a grid, or null for a cell past the last unit.
    function describe(meta, x, y, z) {
        const [unitHeight, unitWidth, perRow, nUnits] = meta.grid;
        const column = Math.floor(x / unitWidth);
        const place = Math.floor(y / unitHeight) * perRow + column;
        if (column >= perRow || place >= nUnits || z === null || z === undefined || Number.isNaN(z)) {
            return null;
        }
        // a page of a layer's maps names each place by its true map number (`meta.units`)
        const unit = Array.isArray(meta.units) ? meta.units[place] : place;
        let name = `${meta.unit} ${unit}`;
        if (meta.names) {
            name += ` (${meta.names[place]})`;
        }
        if (unitHeight > 1 || unitWidth > 1) {
            name += ` · row ${y % unitHeight}, col ${x % unitWidth}`;
        }
        return [name, `value ${valueText(meta, x, y, z)}`];
    }

    // The cell under the pointer. A grid whose maps were averaged down for the screen (`meta.shown`) has blocks of
    // several cells: the hovered block names the map, the pointer's position on the axes names the cell in it.
    function cellUnderPointer(meta, point, mouse) {
        if (!meta.shown || !owner || !owner._fullLayout || !mouse || typeof mouse.clientX !== "number") {
            return [point.x, point.y];
        }
        const xa = owner._fullLayout.xaxis, ya = owner._fullLayout.yaxis, box = owner.getBoundingClientRect();
        const [unitHeight, unitWidth, perRow] = meta.grid;
        const x = Math.round(xa.p2c(mouse.clientX - box.left - xa._offset));
        const y = Math.round(ya.p2c(mouse.clientY - box.top - ya._offset));
        // never outside the hovered block's map, whatever the rounding at its edge
        const left = Math.floor(point.x / unitWidth) * unitWidth, top = Math.floor(point.y / unitHeight) * unitHeight;
        return [Math.min(Math.max(x, left), left + unitWidth - 1), Math.min(Math.max(y, top), top + unitHeight - 1)];
    }

    function hide() {
        if (label) {
            label.style.display = "none";
        }
    }

    function show(event) {
        const point = event && event.points && event.points[0];
        const meta = point && point.data && point.data.meta;
        if (!meta || !Array.isArray(meta.grid)) {
            return;
        }
        shown = event;
        const [x, y] = cellUnderPointer(meta, point, event.event);
        const lines = describe(meta, x, y, point.z);
        if (!lines) {
            hide();
            return;
        }
        if (!label) {
            label = document.createElement("div");
            label.className = LABEL_CLASS;
            label.setAttribute("role", "tooltip");
            Object.assign(label.style, {
                position: "fixed", zIndex: 1000, pointerEvents: "none", whiteSpace: "pre", font: "12px sans-serif",
                background: "rgba(255,255,255,0.95)", border: "1px solid #444", borderRadius: "3px",
                padding: "3px 6px", color: "#111",
            });
            document.body.appendChild(label);
        }
        label.textContent = lines.join("\n");
        label.style.display = "block";
        const mouse = event.event || {};
        const left = (mouse.clientX || 0) + 14;
        const top = (mouse.clientY || 0) + 14;
        // Keep the label inside the window near its right and bottom edges.
        label.style.left = `${Math.min(left, window.innerWidth - label.offsetWidth - 4)}px`;
        label.style.top = `${Math.min(top, window.innerHeight - label.offsetHeight - 4)}px`;
    }

    // Plotly's events are not DOM events: listen on each graph once Plotly has set it up (it then has `on`).
    // A graph purged and plotted again gets a new emitter, hence the check of its listeners, not a flag.
    function attach(graph) {
        if (typeof graph.on !== "function" || !graph._ev) {
            return;
        }
        if (!graph.gridHover) {
            graph.gridHover = {
                hover: function (event) {
                    owner = graph;
                    show(event);
                },
                // A new view under a still pointer: the label of the old one is stale. Only this graph's label:
                // the page's other graphs redraw on their own.
                redrawn: function () {
                    if (owner === graph) {
                        hide();
                    }
                },
            };
        }
        if (!graph.gridHover.moved) {
            // plotly emits a hover only when the hovered block changes: within a block of an averaged-down grid
            // the label follows the pointer from cell to cell
            graph.gridHover.moved = function (mouse) {
                const meta = shown && shown.points && shown.points[0] && shown.points[0].data
                    && shown.points[0].data.meta;
                if (owner === graph && meta && meta.shown && label && label.style.display !== "none") {
                    show({points: shown.points, event: mouse});
                }
            };
            graph.addEventListener("mousemove", graph.gridHover.moved, {passive: true});
        }
        if (graph._ev.listeners("plotly_hover").indexOf(graph.gridHover.hover) < 0) {
            graph.on("plotly_hover", graph.gridHover.hover);
            graph.on("plotly_unhover", hide);
            graph.on("plotly_afterplot", graph.gridHover.redrawn);
        }
    }

    // The label is fixed to the window: when the page scrolls under a still pointer (a unit panel scrolled into
    // view) no new hover comes, and the label would describe the map that was there. Any scroll ends it.
    window.addEventListener("scroll", hide, {passive: true, capture: true});

    new MutationObserver(function () {
        document.querySelectorAll(".js-plotly-plot").forEach(attach);
    }).observe(document.documentElement, {childList: true, subtree: true});
})();
