#!/usr/bin/env bash
# Makes the S3-compatible test server's Python environment: <repo>/.venv-s3 with moto's server
# (PyPI `moto[server]`, pinned in requirements.txt; idempotent, see infra/lib/python-venv.sh).
# Extra pip arguments: METEOR_S3_PIP_ARGS. Python: METEOR_S3_BASE_PYTHON (default python3).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
# shellcheck source=../lib/python-venv.sh
source "$here/../lib/python-venv.sh"
ensure_python_venv infra/s3/install.sh "$(cd "$here/../.." && pwd)/.venv-s3" "$here/requirements.txt" \
  "${METEOR_S3_BASE_PYTHON:-python3}" "${METEOR_S3_PIP_ARGS:-}" 'moto_server --help >/dev/null' ''
