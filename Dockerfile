# Phasegate: the venv is built from the lock (requirements/run.txt, hash-checked) in a builder stage and copied into
# a slim runtime; non-root, `phasegate run`, healthcheck on /healthz.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# uv (pinned, hash-checked) lives in its own venv in this stage only; the runtime image never has it.
COPY requirements/uv.txt requirements/uv.txt
RUN python -m venv /opt/uv && /opt/uv/bin/pip install --require-hashes -r requirements/uv.txt
# Dependencies first (this layer is cached while only the code changes): exactly the locked versions.
# The venv lives at the same path, on the same Python image, as in the runtime stage, so its scripts work there.
COPY requirements/run.txt requirements/run.txt
RUN python -m venv --without-pip /opt/venv \
    && /opt/uv/bin/uv pip sync --python /opt/venv/bin/python --require-hashes requirements/run.txt
# Then the project itself: no dependencies, built with the locked setuptools (no unpinned build environment).
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
RUN /opt/uv/bin/uv pip install --python /opt/venv/bin/python --no-deps --no-build-isolation .

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    PHASEGATE_ROOT=/app
WORKDIR /app
RUN groupadd --system phasegate && useradd --system --gid phasegate --home-dir /app phasegate \
    && mkdir -p /data && chown phasegate:phasegate /data
COPY --from=builder /opt/venv /opt/venv
COPY templates ./templates
COPY migrations ./migrations
COPY alembic.ini ./

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
