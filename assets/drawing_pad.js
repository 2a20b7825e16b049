// The drawing pad (app/ui/drawing_pad.py): a <canvas> drawn on with a mouse, a pen or a finger (pointer events),
// round caps and joins, Clear and Undo. When the pointer lifts, the strokes go to the pad's dcc.Store as vectors,
// {strokes: [[[x, y], ...], ...], width, size} in canvas pixels, through dash_clientside.set_props; the server
// rasterises and preprocesses them (app/core/digits.py). The page is rendered by Dash after this script loads and
// the Content-Security-Policy allows no inline script, so the script finds its containers itself: every element
// with the class "drawing-pad", now and whenever one appears (a MutationObserver).
(function () {
    "use strict";
    const READY = "drawingPadReady";
    // Pointer moves closer than this (canvas pixels) add no point: a stroke stays a few dozen points, not hundreds.
    const MIN_STEP = 1.5;
    const pads = {};

    function round(value) {
        return Math.round(value * 10) / 10;
    }

    function Pad(container) {
        this.container = container;
        this.size = Number(container.dataset.size) || 280;
        this.pen = Number(container.dataset.pen) || 18;
        this.storeId = container.dataset.store;
        this.strokes = [];
        this.current = null;
        this.canvas = document.createElement("canvas");
        const ratio = window.devicePixelRatio || 1;
        this.canvas.width = Math.round(this.size * ratio);
        this.canvas.height = Math.round(this.size * ratio);
        this.canvas.style.width = this.size + "px";
        this.canvas.className = "drawing-pad-canvas";
        this.canvas.setAttribute("role", "img");
        this.canvas.setAttribute("aria-label", "Drawing pad: draw a digit with the mouse, a pen or a finger");
        container.appendChild(this.canvas);
        this.context = this.canvas.getContext("2d");
        this.context.scale(ratio, ratio);
        this.redraw();
        this.listen();
    }

    Pad.prototype.point = function (event) {
        const box = this.canvas.getBoundingClientRect();
        const x = (event.clientX - box.left) * this.size / box.width;
        const y = (event.clientY - box.top) * this.size / box.height;
        return [round(Math.min(Math.max(x, 0), this.size)), round(Math.min(Math.max(y, 0), this.size))];
    };

    Pad.prototype.redraw = function () {
        const context = this.context;
        context.fillStyle = "#ffffff";
        context.fillRect(0, 0, this.size, this.size);
        context.strokeStyle = "#000000";
        context.fillStyle = "#000000";
        context.lineWidth = this.pen;
        context.lineCap = "round";
        context.lineJoin = "round";
        for (const stroke of this.strokes) {
            this.drawStroke(stroke);
        }
    };

    Pad.prototype.drawStroke = function (stroke) {
        const context = this.context;
        if (stroke.length === 1) {
            context.beginPath();
            context.arc(stroke[0][0], stroke[0][1], this.pen / 2, 0, 2 * Math.PI);
            context.fill();
            return;
        }
        context.beginPath();
        context.moveTo(stroke[0][0], stroke[0][1]);
        for (let i = 1; i < stroke.length; i++) {
            context.lineTo(stroke[i][0], stroke[i][1]);
        }
        context.stroke();
    };

    Pad.prototype.send = function () {
        if (!window.dash_clientside || !window.dash_clientside.set_props || !this.storeId) {
            return;
        }
        window.dash_clientside.set_props(this.storeId, {
            data: {strokes: this.strokes.map((stroke) => stroke.slice()), width: this.pen, size: this.size},
        });
    };

    Pad.prototype.listen = function () {
        const pad = this;
        const canvas = this.canvas;
        canvas.addEventListener("pointerdown", function (event) {
            if (event.button !== 0 && event.pointerType === "mouse") {
                return;
            }
            event.preventDefault();
            canvas.setPointerCapture(event.pointerId);
            pad.current = [pad.point(event)];
            pad.strokes.push(pad.current);
            pad.drawStroke(pad.current);
        });
        canvas.addEventListener("pointermove", function (event) {
            if (!pad.current) {
                return;
            }
            event.preventDefault();
            const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
            for (const each of events.length ? events : [event]) {
                const next = pad.point(each);
                const last = pad.current[pad.current.length - 1];
                if (Math.hypot(next[0] - last[0], next[1] - last[1]) >= MIN_STEP) {
                    pad.current.push(next);
                }
            }
            pad.redraw();
        });
        function lift(event) {
            if (!pad.current) {
                return;
            }
            const last = pad.current[pad.current.length - 1];
            const end = pad.point(event);
            if (end[0] !== last[0] || end[1] !== last[1]) {
                pad.current.push(end);
            }
            pad.current = null;
            pad.redraw();
            pad.send();
        }
        canvas.addEventListener("pointerup", lift);
        canvas.addEventListener("pointercancel", lift);
    };

    Pad.prototype.clear = function () {
        this.strokes = [];
        this.current = null;
        this.redraw();
        this.send();
    };

    Pad.prototype.undo = function () {
        this.strokes.pop();
        this.current = null;
        this.redraw();
        this.send();
    };

    function attachAll() {
        for (const container of document.querySelectorAll(".drawing-pad")) {
            if (!container.dataset[READY] || !container.querySelector("canvas")) {
                container.dataset[READY] = "1";
                pads[container.id] = new Pad(container);
            }
        }
    }

    // Clear and Undo are plain buttons that name their pad (data-pad, data-pad-action): one listener for all.
    document.addEventListener("click", function (event) {
        const button = event.target.closest ? event.target.closest("[data-pad-action]") : null;
        const pad = button ? pads[button.dataset.pad] : null;
        if (pad && button.dataset.padAction === "clear") {
            pad.clear();
        } else if (pad && button.dataset.padAction === "undo") {
            pad.undo();
        }
    });

    function start() {
        attachAll();
        new MutationObserver(attachAll).observe(document.body, {childList: true, subtree: true});
    }

    if (document.readyState === "loading") {
        document.addEventListener("DOMContentLoaded", start);
    } else {
        start();
    }
})();
