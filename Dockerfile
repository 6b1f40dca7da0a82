# Phasegate: slim Python, non-root, `phasegate run`, healthcheck on /healthz.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PHASEGATE_ROOT=/app

WORKDIR /app
RUN groupadd --system phasegate && useradd --system --gid phasegate --home-dir /app phasegate

# Dependencies first (cached while only the code changes).
COPY pyproject.toml README.md ./
RUN mkdir -p bot handlers && touch bot/__init__.py handlers/__init__.py \
    && pip install . && pip uninstall -y phasegate

COPY bot ./bot
COPY handlers ./handlers
COPY templates ./templates
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install --no-deps . && mkdir -p /data && chown phasegate:phasegate /data

USER phasegate
ENV DATABASE_URL=sqlite:////data/phasegate.db \
    PHASEGATE_HOST=0.0.0.0 \
    PHASEGATE_PORT=3000
EXPOSE 3000
VOLUME ["/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PHASEGATE_PORT\", \"3000\")}/healthz', timeout=4)" || exit 1

ENTRYPOINT ["phasegate"]
CMD ["run"]
