#!/bin/sh
# The container's entrypoint: make the store and state folders on the volume ready, then run the command
# (gunicorn by default, see the Dockerfile).
#
# A store that holds no model yet (a new, empty volume) gets the bundled model, copied to a temporary folder
# (which the store skips) and renamed into place, so no half-copied model is ever listed. A store with anything
# of the user's in it is left exactly as it is: nothing is copied over it or beside it.
set -eu

# Where the image keeps the models it brings (the Dockerfile copies model_store/mnist-cnn there).
BUNDLED=${BUNDLED_MODELS:-/srv/bundled}
say() { echo "entrypoint: $*" >&2; }

for dir in "$MODEL_STORE" "$STATE_DIR"; do
    mkdir -p "$dir" 2>/dev/null || true
    if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
        say "$dir is not a folder that uid $(id -u) can write: give the volume to $(id -u):$(id -g)" \
            "(chown -R $(id -u):$(id -g) on the host folder) or run the container with --user"
        exit 1
    fi
done

# Hidden entries (temporary folders of saves, dot-files) are no models: the store lists no hidden name.
if [ -z "$(ls -A "$MODEL_STORE" | grep -v '^\.' || true)" ]; then
    for model in "$BUNDLED"/*; do
        name=$(basename "$model")
        temp="$MODEL_STORE/.tmp-bundled-$name-$$"
        cp -R "$model" "$temp"
        # rename(2) refuses a non-empty target: a container starting at the same time keeps its own copy.
        if mv -T "$temp" "$MODEL_STORE/$name" 2>/dev/null; then
            say "copied the bundled model $name into the empty store $MODEL_STORE"
        else
            rm -rf "$temp"
        fi
    done
else
    say "$MODEL_STORE holds models: the bundled one is not copied"
fi

exec "$@"
