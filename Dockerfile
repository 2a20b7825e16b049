# Production image: gunicorn serving the dashboard and the JSON API as a non-root user, the app in a virtualenv.
#
# BASE: any Debian-based image with Python 3.11 and its venv module (python:3.11-slim, or Debian 12 with the
# python3 and python3-venv packages: `make image-check` makes one with debootstrap where no image can be pulled).
# The store lives on the /data volume; the bundled model is copied into it at start only when it holds no model.
#
#   docker build -t cnn-explorer .
#   docker run -p 8050:8050 -v explorer-data:/data cnn-explorer
ARG BASE=python:3.11-slim
FROM ${BASE}

# Only where the network re-signs TLS: the path of a CA bundle mounted into the build (`-v CA:CA:ro`), for pip.
# Empty (the default): pip trusts its own bundle.
ARG PIP_CERT=""
# The account the server runs as; give a bind-mounted /data to this uid and gid.
ARG UID=10001
ARG GID=10001

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/explorer \
    MODEL_STORE=/data/model_store \
    STATE_DIR=/data/state \
    DATA_DIR=/data/datasets \
    HOST=0.0.0.0 \
    PORT=8050 \
    WORKERS=2

# The virtualenv keeps the pinned packages apart from the base's own Python packages (Debian's python3 refuses
# `pip install` into itself): the same result on python:3.11-slim and on a plain Debian.
RUN python3 -c 'import sys; v = sys.version_info; assert v[:2] == (3, 11), f"BASE must bring Python 3.11, not {v[0]}.{v[1]}"' \
 && python3 -m venv /opt/venv
WORKDIR /srv
COPY requirements.txt .
RUN if [ -z "$PIP_CERT" ]; then unset PIP_CERT; fi \
 && pip install --no-cache-dir --quiet --upgrade pip \
 && pip install --no-cache-dir --quiet -r requirements.txt

RUN groupadd --gid "$GID" explorer \
 && useradd --uid "$UID" --gid "$GID" --create-home --home-dir /home/explorer --shell /usr/sbin/nologin explorer \
 && mkdir -p /data/model_store /data/state /data/datasets \
 && chown -R "$UID:$GID" /data

# The code and the bundled model belong to root: the server can read them, not change them.
COPY app ./app
COPY assets ./assets
COPY model_store/mnist-cnn ./bundled/mnist-cnn
COPY scripts/container_entrypoint.sh /usr/local/bin/explorer-entrypoint
RUN chmod -R a+rX,go-w /srv /usr/local/bin/explorer-entrypoint \
 && python -m compileall -q app

USER ${UID}:${GID}
VOLUME ["/data"]
EXPOSE 8050

# /healthz stays public when AUTH_USERS asks for a login. Measured: /healthz answers ~20 s after start on 2 cores
# (TensorFlow import and the warm-up of both workers), ~30 s on one.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8050'), timeout=4)"
ENTRYPOINT ["explorer-entrypoint"]
# As `make serve`: 2 workers x 4 threads, no control socket, the warm-up hook; never --preload (TensorFlow must
# be imported after the fork, see README "Deploy"). app/gunicorn_conf.py picks the worker that reads requests in an
# event loop (app/serving/front.py), so gunicorn can face clients on 0.0.0.0: slow ones hold no thread.
CMD ["sh", "-c", "exec gunicorn --workers \"$WORKERS\" --threads 4 --bind \"$HOST:$PORT\" --no-control-socket --config app/gunicorn_conf.py app.main:server"]
