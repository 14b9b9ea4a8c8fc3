# The service on a slim Python base, as a non-root user: migrate, register the model built into the image,
# serve. The same steps run without Docker in tests/app/test_deploy.py.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    AVVIK_HOST=0.0.0.0 AVVIK_PORT=8000 AVVIK_DATABASE_URL=sqlite:////data/avvik.db \
    AVVIK_MODEL_DIR=/app/models/default

RUN useradd --create-home --uid 10001 avvik && mkdir /data && chown avvik /data
WORKDIR /app
# The locked versions first (the ones the tests ran with), then the service itself without resolving again.
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md ./
COPY app ./app
COPY classifier ./classifier
COPY migrations ./migrations
RUN pip install --no-deps .
# Trained at build time (deterministic for the corpus and code), so a container only registers it at start.
# /app/models/registry is where the server unpacks registered versions: the one writable folder.
RUN python -m classifier train --out /app/models/default \
    && mkdir /app/models/registry && chown avvik /app/models/registry

USER avvik
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4).status == 200 else 1)"
CMD ["sh", "-c", "avvik migrate && avvik model ensure && exec avvik serve"]
