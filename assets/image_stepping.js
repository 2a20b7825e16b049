// Explore's ◀ ▶, arrow keys and "random" draw the stepped test image here in the browser: the view's answer is
// fetched from the explorer-view route (app/api/explorer.py: the same figures the page's render callback makes) and
// handed to the three graphs and the caption, so no Dash callback runs on the server per step. The image box's new
// number is marked as drawn here, so it does not ask the render callback (explorer.askImage); the page's link
// follows once the steps pause.
//
// One answer at a time, the newest step next: while an answer loads, newer steps only move the target; when it
// arrives it is drawn (if no later step is drawn yet) and the newest step is asked for next, the steps between
// never asked. Holding a key so draws as fast as answers come and builds no queue; an answer loading for longer
// than ABANDON_MS is cancelled for a newer step. After a step the next image in the same direction is fetched
// ahead. A step whose answer is not a view (an error, a scale still computing, a lost connection) asks the render
// callback instead, which shows the message as any other change does.
(function () {
    "use strict";
    const HEATMAP = "explore-heatmap";
    const INPUT_IMAGE = "explore-input";
    const PROBABILITIES = "explore-probabilities";
    const CAPTION = "explore-image-info";
    const VIEW = "explore-view";
    const IMAGE_ASKED = "explore-image-asked";
    const MESSAGE = "explore-message";
    const KEPT_ANSWERS = 6;  // a step back and forth, and the prefetched next ones
    const PAUSE_MS = 300;  // the link (and the URL, the compare link) follows after this long without a step

    const ABANDON_MS = 250;

    const answers = new Map();  // answer URL -> {promise, controller, done}; the newest last
    let steps = 0;  // steps taken, numbering them
    let newest = null;  // the newest step: {number, image, url, viewQuery, ahead, count}
    let loading = null;  // the step whose answer loads, and since when
    let drawnStep = 0;  // the number of the step drawn
    let drawnHere = null;  // the image number the newest step draws, its box change asking no render
    let pauseTimer = null;
    let drawnFigure = null;  // the grid figure the newest step drew, until the pause writes its link

    function setProps(id, props) {
        window.dash_clientside.set_props(id, props);
    }

    function answerUrl(viewQuery, image) {
        const params = new URLSearchParams(viewQuery);
        const model = params.get("model");
        params.delete("model");
        params.set("image", String(image));
        return `/api/models/${encodeURIComponent(model)}/explorer-view?${params.toString()}`;
    }

    // The answer of `url`: kept, or fetched (and kept, the oldest dropped past KEPT_ANSWERS).
    function answerOf(url) {
        const kept = answers.get(url);
        if (kept) {
            answers.delete(url);  // the most recently used last
            answers.set(url, kept);
            return kept;
        }
        const controller = new AbortController();
        const entry = {controller: controller, done: false};
        entry.promise = fetch(url, {credentials: "same-origin", signal: controller.signal})
            .then(function (response) {
                if (response.status !== 200) {  // 202 (still computing) and errors: the render callback says why
                    throw new Error(`${response.status} from ${url}`);
                }
                return response.json();
            })
            .finally(function () { entry.done = true; });
        entry.promise.catch(function () { answers.delete(url); });  // a failure is asked again next time
        answers.set(url, entry);
        while (answers.size > KEPT_ANSWERS) {
            const oldest = answers.keys().next().value;
            answers.get(oldest).controller.abort();
            answers.delete(oldest);
        }
        return entry;
    }

    // The answer drawn: the chosen unit's outline (the grid's first shape, moved in the browser) carried over
    // from the grid drawn when the layout is the same.
    function draw(answer) {
        const graph = document.querySelector(`#${HEATMAP} .js-plotly-plot`);
        const shown = graph && graph.layout && graph.layout.shapes && graph.layout.shapes[0];
        const shownMeta = graph && graph.data && graph.data[0] && graph.data[0].meta;
        const meta = answer.heatmap.data[0].meta;
        if (shown && shownMeta && meta && String(shownMeta.grid) === String(meta.grid)
                && String(shownMeta.units) === String(meta.units)) {
            answer.heatmap.layout.shapes[0] = shown;
        }
        drawnFigure = answer.heatmap;
        setProps(HEATMAP, {figure: answer.heatmap});
        setProps(INPUT_IMAGE, {figure: answer.input});
        setProps(PROBABILITIES, {figure: answer.probabilities});
        setProps(CAPTION, {children: answer.caption});
    }

    // Once the steps pause: the view's link (the URL, Back, the compare link follow it) and no message left over;
    // not when the render callback drew another view meanwhile (a colormap chosen): its link is the newer.
    function followLater(query) {
        clearTimeout(pauseTimer);
        pauseTimer = setTimeout(function () {
            drawnFigure = null;
            setProps(VIEW, {data: query});
            setProps(MESSAGE, {children: []});
        }, PAUSE_MS);
    }

    // What a grid figure shows, apart from the chosen unit's outline: its title, values, colours and range.
    function viewOf(figure) {
        const trace = figure && figure.data && figure.data[0];
        const title = figure && figure.layout && figure.layout.title;
        return trace ? JSON.stringify([title && title.text, trace.meta && trace.meta.values, trace.colorscale,
                                       trace.zmin, trace.zmax]) : "";
    }

    function askRender(image) {
        setProps(IMAGE_ASKED, {data: {image: image, at: Date.now()}});
    }

    // Fetch (or find) the answer of `step`; once it is there, draw it unless a later step is drawn, then go on
    // with the newest step if it is another.
    function load(step) {
        const current = {step: step, since: performance.now()};
        loading = current;
        const next = function () {
            if (loading === current) {
                loading = null;
                if (newest.number > step.number) {
                    load(newest);
                }
            }
        };
        answerOf(step.url).promise.then(function (answer) {
            if (step.number > drawnStep) {
                drawnStep = step.number;
                draw(answer);
                followLater(answer.query);
            }
            if (step === newest && step.ahead) {
                const image = (((step.image + step.ahead) % step.count) + step.count) % step.count;
                answerOf(answerUrl(step.viewQuery, image));
            }
            next();
        }, function () {
            if (step === newest) {
                drawnHere = null;
                askRender(step.image);
            }
            next();
        });
    }

    window.imageStepping = {
        // Draw test image `image` of the view `viewQuery` (the query string of the view drawn); `ahead` (+1, -1
        // or 0) the direction to prefetch in, `count` the test set's size. Returns false when it cannot (the
        // caller then lets the render callback draw it).
        step: function (image, viewQuery, ahead, count) {
            if (typeof viewQuery !== "string" || !viewQuery.startsWith("?")
                    || !window.dash_clientside || !window.dash_clientside.set_props) {
                return false;
            }
            const params = new URLSearchParams(viewQuery);
            // most active first orders a page's maps by this image: the page's controls come from the render; and
            // while the render callback draws (a colormap just chosen), the step waits its turn behind it
            if (!params.get("model") || !params.get("layer") || params.get("order") === "active"
                    || document.querySelector(`#${HEATMAP}[data-dash-is-loading]`)) {
                return false;
            }
            steps += 1;
            newest = {number: steps, image: image, url: answerUrl(viewQuery, image), viewQuery: viewQuery,
                      ahead: ahead, count: count};
            drawnHere = image;
            if (loading && performance.now() - loading.since > ABANDON_MS) {
                const entry = answers.get(loading.step.url);
                if (entry && !entry.done) {
                    entry.controller.abort();
                    answers.delete(loading.step.url);
                }
                loading = null;
            }
            if (!loading) {
                load(newest);
            }
            return true;
        },
        // The grid's figure changed (assets/explorer.js pageControls): drawn by the render callback, not by the
        // newest step, the pending link is that of an older view.
        gridDrawn: function (figure) {
            if (drawnFigure !== null && viewOf(figure) !== viewOf(drawnFigure)) {
                clearTimeout(pauseTimer);
                drawnFigure = null;
            }
        },
        // Whether the image box's number `image` is the one the newest step draws here (asked once: a later
        // change to the same number asks the render callback).
        drawsHere: function (image) {
            const here = drawnHere !== null && image === drawnHere;
            drawnHere = null;
            return here;
        },
    };
})();
