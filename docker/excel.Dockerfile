# syntax=docker/dockerfile:1.7
# IndexForge excel service image (`indexforge-excel --host --port`, settings from INDEXFORGE_*).
# Build from the repository root:  docker build -f docker/excel.Dockerfile .
# Multi-stage: the build stage makes a virtualenv with the package and its service extras;
# the runtime stage copies only that virtualenv onto the same pinned base, as uid 10001 (the
# uid the chart and the operator run it as). No HEALTHCHECK: Kubernetes probes /healthz, /readyz.

ARG PYTHON_IMAGE=docker.io/library/python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY services/ services/
RUN /opt/venv/bin/pip install ".[services]" \
    && /opt/venv/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="indexforge-excel" \
      org.opencontainers.image.source="https://github.com/indexforge/indexforge" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 indexforge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin indexforge
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["indexforge-excel"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
