# One image for every role: `asylum-intake api` (default), `worker`, `beat`, `migrate`.
# Build: docker build -t asylum-intake .   Run: see compose.yaml and the README.

# --- builder: a virtual environment with the pinned dependencies and the project's wheel -------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
RUN python -m venv /opt/venv

# Dependencies first (exact pins from pyproject.toml): code changes reuse this layer.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && /opt/venv/bin/pip install --no-cache-dir -r requirements.txt

# Then the project itself, as a wheel (app, workers, migrations with their templates and data).
COPY README.md alembic.ini ./
COPY app ./app
COPY workers ./workers
COPY migrations ./migrations
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps . \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib

# --- final: the slim runtime, no build tools, a non-root user -----------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INTAKE_DATA_DIR=/data \
    INTAKE_API_HOST=0.0.0.0 \
    INTAKE_API_PORT=8000

RUN groupadd --system --gid 10001 intake \
    && useradd --system --uid 10001 --gid intake --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin intake \
    && mkdir -p /data \
    && chown intake:intake /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /data
USER 10001:10001
EXPOSE 8000

# Liveness of the API (worker and beat containers switch it off in compose.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('INTAKE_API_PORT', '8000') + '/healthz', timeout=4)"]

ENTRYPOINT ["asylum-intake"]
CMD ["api", "--host", "0.0.0.0"]
