// While a page shows a background job's progress (an alert of class "still-computing", app/ui/components.py), the
// navigation bar's poll (app/ui/navigation.py) ticks, and the callbacks that listen to it ask again; once no such
// alert is left, the poll stops.
(function () {
    "use strict";
    let ticking = false;

    function check() {
        const computing = document.querySelector(".still-computing") !== null;
        // the Interval draws no element: it is found in Dash's layout by its id
        if (computing !== ticking && window.dash_clientside && window.dash_clientside.set_props) {
            ticking = computing;
            window.dash_clientside.set_props("still-computing-poll", {disabled: !computing});
        }
    }

    new MutationObserver(check).observe(document.documentElement, {childList: true, subtree: true});
})();
