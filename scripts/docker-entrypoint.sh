#!/bin/sh
# Container start: migrate the database, build the index on first start, then run the command.
set -e
ldtbxh db upgrade
if ! ldtbxh index list | grep -q '^\*'; then
  ldtbxh index build
fi
exec "$@"
