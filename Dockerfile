# Parley: one async process serving workers, the dashboard and the HIT manager. Behind Caddy (deploy/).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
RUN groupadd --system --gid 10001 parley \
    && useradd --system --uid 10001 --gid parley --home-dir /app --no-create-home --shell /usr/sbin/nologin parley

# Dependencies first, so a code change does not reinstall them. Editable, so the server finds frontend/ next to it.
COPY pyproject.toml README.md ./
COPY server/__init__.py server/__init__.py
COPY worlds/__init__.py worlds/__init__.py
RUN pip install --no-cache-dir -e .

COPY server server
COPY worlds worlds
COPY frontend frontend
COPY migrations migrations
COPY alembic.ini ./
RUN mkdir -p /app/data && chown parley:parley /app/data

USER 10001:10001
EXPOSE 8000
VOLUME ["/app/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# server.serving: uvicorn with Parley's options (server/serving.py: frame size cap, handshake and keep-alive
# limits, no per-message deflate), the same as every other way Parley starts.
# --proxy-headers: the client's scheme and address come from Caddy's X-Forwarded-* (wss, https cookies).
CMD ["python", "-m", "server.serving", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers"]
