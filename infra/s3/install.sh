#!/usr/bin/env bash
# Makes the S3-compatible test server's Python environment: <repo>/.venv-s3 with moto's server
# (PyPI `moto[server]`, pinned in requirements.txt). Idempotent: a venv whose stamp matches the
# requirements (and the Python version) is left alone. Extra pip arguments: METEOR_S3_PIP_ARGS.
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv-s3"
requirements="$here/requirements.txt"
stamp="$venv/.meteor-requirements.sha256"
base_python="${METEOR_S3_BASE_PYTHON:-python3}"

log() { echo "infra/s3/install.sh: $*" >&2; }

want="$( { cat "$requirements"; "$base_python" -c 'import sys; print(sys.version_info[:2])'; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/moto_server" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  log "$venv is up to date with $requirements"
  exit 0
fi

started=$SECONDS
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv ($("$base_python" --version 2>&1))"
  "$base_python" -m venv "$venv"
fi
rm -f "$stamp"
log "installing $requirements into $venv"
# shellcheck disable=SC2086 # METEOR_S3_PIP_ARGS is a list of arguments
"$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" ${METEOR_S3_PIP_ARGS:-} >&2
"$venv/bin/moto_server" --help >/dev/null
echo "$want" >"$stamp"
log "done in $((SECONDS - started)) s"
