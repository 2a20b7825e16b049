// Clientside helpers: keep the address bar in step with a page's state without a navigation; copy its URL.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    explorer: {
        // The explorer's ◀ ▶ and random buttons (app/pages/explore.py): the next image number, found here so a
        // click costs one round trip (the render's). Previous/next wrap around; a malformed number counts as 0.
        stepImage: function (_previous, _next, _random, current, maximum) {
            const whole = function (value) {
                if (typeof value === "number" && Number.isInteger(value)) {
                    return value;
                }
                return typeof value === "string" && /^\s*\d+\s*$/.test(value) ? parseInt(value, 10) : 0;
            };
            const count = Math.max(whole(maximum), 0) + 1;
            const triggered = window.dash_clientside.callback_context.triggered;
            const button = triggered.length ? triggered[0].prop_id.split(".")[0] : "";
            if (button === "explore-random") {
                return Math.floor(Math.random() * count);
            }
            const step = button === "explore-previous" ? -1 : 1;
            return (((whole(current) + step) % count) + count) % count;
        },
        replaceQuery: function (query) {
            if (typeof query === "string" && window.location.search !== query) {
                window.history.replaceState(window.history.state, "", window.location.pathname + query);
            }
            return query;
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
