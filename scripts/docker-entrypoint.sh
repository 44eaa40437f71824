#!/bin/sh
# Container start, as the unprivileged user: seed the knowledge base into the data volume on first start,
# migrate the database, build the index on first start, then run the command.
#   LDTBXH_KNOWLEDGE_DIR   the writable knowledge base (in the volume; the console writes approved drafts there)
#   LDTBXH_KNOWLEDGE_SEED  the image's read-only copy it is seeded from
set -e
knowledge="${LDTBXH_KNOWLEDGE_DIR:-/data/knowledge}"
seed="${LDTBXH_KNOWLEDGE_SEED:-/opt/ldtbxh/knowledge}"
if [ ! -f "$knowledge/topics.yaml" ]; then
  mkdir -p "$knowledge"
  cp -R "$seed/." "$knowledge/"
  chmod -R u+w "$knowledge"
  echo "docker-entrypoint: knowledge base seeded into $knowledge from $seed" >&2
fi
if [ ! -w "$knowledge" ] || [ ! -w "$knowledge/qa" ]; then
  echo "docker-entrypoint: $knowledge is not writable by $(id -un): approved drafts could not be saved" >&2
  exit 1
fi
ldtbxh db upgrade
if ! ldtbxh index list | grep -q '^\*'; then
  ldtbxh index build
fi
exec "$@"
