// Clientside helpers: keep the address bar in step with a page's state without a navigation.
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    explorer: {
        replaceQuery: function (query) {
            if (typeof query === "string" && window.location.search !== query) {
                window.history.replaceState(window.history.state, "", window.location.pathname + query);
            }
            return query;
        },
    },
});
