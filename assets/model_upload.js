// The Models page's upload: the chosen files (data URLs held by dcc.Upload) are posted as a multipart form to
// POST /api/models, with progress; a model that passes every check opens its compatibility report.
(function () {
    function dataUrlToBlob(dataUrl) {
        const comma = dataUrl.indexOf(",");
        const binary = atob(dataUrl.slice(comma + 1));
        const bytes = new Uint8Array(binary.length);
        for (let i = 0; i < binary.length; i++) {
            bytes[i] = binary.charCodeAt(i);
        }
        return new Blob([bytes], {type: "application/octet-stream"});
    }

    function say(text, color) {
        window.dash_clientside.set_props("model-upload-message", {
            children: {type: "Div", namespace: "dash_html_components",
                       props: {children: text, className: "alert alert-" + (color || "info") + " py-2 mb-0"}},
        });
    }

    function uploadModel(nClicks, name, dataset, modelContents, modelFile, testContents, testFile) {
        if (!nClicks) {
            return window.dash_clientside.no_update;
        }
        if (!name || !name.trim()) {
            return "Give the model a name.";
        }
        if (!modelContents) {
            return "Choose a model file (.keras, .h5 or a .zip of a model folder).";
        }
        if (!dataset && !testContents && !/\.zip$/i.test(modelFile || "")) {
            return "Choose a test set: an .npz file, or a built-in dataset.";
        }
        const form = new FormData();
        form.append("name", name.trim());
        form.append("model", dataUrlToBlob(modelContents), modelFile);
        if (dataset) {
            form.append("dataset", dataset);
        } else if (testContents) {
            form.append("test_set", dataUrlToBlob(testContents), testFile);
        }
        const request = new XMLHttpRequest();
        request.open("POST", "/api/models");
        request.upload.onprogress = function (event) {
            if (event.lengthComputable) {
                const percent = Math.round(100 * event.loaded / event.total);
                say(percent < 100 ? "Uploading… " + percent + " %" : "Checking the model…");
            }
        };
        request.onload = function () {
            let answer = {};
            try {
                answer = JSON.parse(request.responseText);
            } catch (error) {
                answer = {error: "the server answered " + request.status};
            }
            if (request.status === 201) {
                window.location.assign("/models?model=" + encodeURIComponent(answer.name) + "&added=1");
            } else {
                say("Not added (" + request.status + "): " + (answer.error || "unknown error"), "warning");
            }
        };
        request.onerror = function () {
            say("The upload did not reach the server (connection lost, or larger than a proxy allows).", "warning");
        };
        request.send(form);
        return "Uploading…";
    }

    window.dash_clientside = Object.assign({}, window.dash_clientside, {
        models: {uploadModel: uploadModel},
    });
})();
