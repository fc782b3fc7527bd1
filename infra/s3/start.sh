#!/usr/bin/env bash
# Runs an S3-compatible server (moto's, from .venv-s3; see install.sh) in the foreground, for the
# artifact-store tests and for trying `artifacts.uri: s3://…` locally. It keeps everything in
# memory: a bucket is gone when the server stops. Usage: infra/s3/start.sh [PORT] (default 5000).
# Then: export AWS_ENDPOINT_URL_S3=http://127.0.0.1:PORT AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
server="$repo/.venv-s3/bin/moto_server"
if [[ ! -x "$server" ]]; then
  echo "infra/s3/start.sh: $server is missing: run bash infra/s3/install.sh first" >&2
  exit 1
fi
exec "$server" -H 127.0.0.1 -p "${1:-5000}"
