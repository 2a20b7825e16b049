// Clientside helpers of the training page (app/pages/train.py).
window.dash_clientside = Object.assign({}, window.dash_clientside, {
    training: {
        // The form's banner talks about one job ("Job … started", "Stopping job …", "already running (job …)"):
        // once the shown job is that one and has ended, the banner is stale (the outcome is in the run's card),
        // so it goes, with the note of which job it was about. Returns [banner, banner's job].
        clearEndedBanner: function (view, bannerJob) {
            const keep = window.dash_clientside.no_update;
            const ended = ["succeeded", "failed", "stopped"];
            if (!bannerJob || !view || view.job !== bannerJob || !ended.includes(view.status)) {
                return [keep, keep];
            }
            return [null, null];
        },
    },
});
