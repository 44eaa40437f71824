# The assistant as one container: web chat, Telegram/Zalo webhooks and the console on port 8000, run as the
# unprivileged user "app". Everything that changes lives in the /data volume, owned by app: the SQLite
# database (or set LDTBXH_DATABASE_URL for PostgreSQL), the index versions, the materialised model and the
# knowledge base, /data/knowledge, which the entrypoint seeds from the image's read-only copy on first start
# (approved drafts are written there and survive a new container). See README, "Container".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    LDTBXH_DATA_DIR=/data \
    LDTBXH_KNOWLEDGE_DIR=/data/knowledge \
    LDTBXH_KNOWLEDGE_SEED=/opt/ldtbxh/knowledge

RUN apt-get update && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 app

WORKDIR /app
# torch first and pinned to the CPU build: an unpinned torch pulls several GB of CUDA packages.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX_URL" torch==2.13.0

COPY pyproject.toml README.md constraints.txt ./
COPY bot bot
COPY indexer indexer
COPY handlers handlers
RUN pip install --no-cache-dir -c constraints.txt -e .

COPY knowledge /opt/ldtbxh/knowledge
COPY data data
COPY scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

RUN mkdir -p /data && chown app:app /data
USER app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s CMD python -c \
    "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["ldtbxh", "serve", "--host", "0.0.0.0", "--port", "8000"]
