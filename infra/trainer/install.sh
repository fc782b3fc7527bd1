#!/usr/bin/env bash
# Makes the trainer's Python environment: <repo>/.venv-trainer with requirements.txt installed.
# Idempotent: a hash of requirements.txt (and the Python version) is kept in the venv, and a venv
# that matches it is left alone (near-instant). Extra pip arguments (a mirror, a CPU-only torch
# index): METEOR_TRAINER_PIP_ARGS. Python: METEOR_TRAINER_BASE_PYTHON (default python3).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.venv-trainer"
requirements="$here/requirements.txt"
stamp="$venv/.meteor-requirements.sha256"
base_python="${METEOR_TRAINER_BASE_PYTHON:-python3}"

log() { echo "install.sh: $*" >&2; }

want="$( { cat "$requirements"; "$base_python" -c 'import sys; print(sys.version_info[:2])'; } | sha256sum | cut -d' ' -f1)"
if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  log "$venv is up to date with $requirements"
  exit 0
fi

started=$SECONDS
if [[ ! -x "$venv/bin/python" ]]; then
  log "creating $venv ($("$base_python" --version 2>&1))"
  "$base_python" -m venv "$venv"
fi
rm -f "$stamp"
log "installing $requirements into $venv (several GB the first time: torch brings CUDA libraries)"
# shellcheck disable=SC2086 # METEOR_TRAINER_PIP_ARGS is a list of arguments
"$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" ${METEOR_TRAINER_PIP_ARGS:-} >&2
log "checking the imports"
"$venv/bin/python" -c 'import torch, transformers, trl, peft, accelerate, datasets' >&2
echo "$want" >"$stamp"
log "done in $((SECONDS - started)) s"
