# Production image: gunicorn serving the dashboard and the JSON API (bundled model included).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MODEL_STORE=/data/model_store \
    STATE_DIR=/data/state \
    HOST=0.0.0.0 \
    PORT=8050 \
    WORKERS=2

WORKDIR /srv
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY app ./app
COPY assets ./assets
COPY model_store /srv/bundled_models
# The bundled model is copied into the (volume-mounted) store on first start, never over a user's own.
RUN mkdir -p /data/model_store /data/state && cp -r /srv/bundled_models/. /data/model_store/
VOLUME ["/data"]
EXPOSE 8050

HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz')"
# Never --preload: TensorFlow must be imported after the fork (see README, "Production").
CMD ["sh", "-c", "exec gunicorn --workers ${WORKERS} --threads 4 --timeout 120 --bind ${HOST}:${PORT} --no-control-socket --config app/gunicorn_conf.py app.main:server"]
