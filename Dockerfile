FROM python:3.11-slim
WORKDIR /app
# CPU build of torch first; set TORCH_INDEX to a CPU wheel index where PyPI's default
# build would be the CUDA one.
ARG TORCH_INDEX=""
RUN pip install --no-cache-dir ${TORCH_INDEX:+--index-url $TORCH_INDEX} torch==2.13.0
COPY pyproject.toml README.md ./
COPY domain domain
COPY application application
COPY adapters adapters
COPY entrypoints entrypoints
COPY config config
RUN pip install --no-cache-dir . && useradd --create-home memorymesh
USER memorymesh
ENV HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MEMORY_HOST=0.0.0.0 MEMORY_PORT=8000
EXPOSE 8000
CMD ["memorymesh", "serve"]
