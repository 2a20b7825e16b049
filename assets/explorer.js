// Clientside helpers: keep the address bar in step with a page's state without a navigation; copy its URL.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    explorer: {
        replaceQuery: function (query) {
            if (typeof query === "string" && window.location.search !== query) {
                window.history.replaceState(window.history.state, "", window.location.pathname + query);
            }
            return query;
        },
        // The "Copy link" button (app/ui/copy_link.py): returns [feedback, the field's value, the field's class].
        copyLink: function (nClicks) {
            const hidden = "visually-hidden";
            const url = window.location.href;
            const field = document.getElementById("copy-link-field");
            clearTimeout(window.explorerCopyLinkTimer);
            const copied = function () {
                window.explorerCopyLinkTimer = setTimeout(function () {
                    window.dash_clientside.set_props("copy-link-feedback", {children: ""});
                }, 2000);
                return ["Link copied", url, hidden];
            };
            // Without the Clipboard API (plain HTTP on another host) or when it is refused: select and copy.
            const fallback = function () {
                field.value = url;
                field.select();
                let ok = false;
                try {
                    ok = document.execCommand("copy");
                } catch (error) {
                    ok = false;
                }
                if (ok) {
                    return copied();
                }
                return ["Press Ctrl+C to copy the link", url, "form-control form-control-sm"];
            };
            if (navigator.clipboard && window.isSecureContext) {
                return navigator.clipboard.writeText(url).then(copied, fallback);
            }
            return fallback();
        },
    },
});
