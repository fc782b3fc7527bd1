#!/usr/bin/env bash
# Makes the trainer's Python environment: <repo>/.venv-trainer with requirements.txt installed
# (idempotent; see infra/lib/python-venv.sh). Extra pip arguments (a mirror, a CPU-only torch
# index): METEOR_TRAINER_PIP_ARGS. Python: METEOR_TRAINER_BASE_PYTHON (default python3).
set -euo pipefail
here="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")" && pwd)"
# shellcheck source=../lib/python-venv.sh
source "$here/../lib/python-venv.sh"
ensure_python_venv install.sh "$(cd "$here/../.." && pwd)/.venv-trainer" "$here/requirements.txt" \
  "${METEOR_TRAINER_BASE_PYTHON:-python3}" "${METEOR_TRAINER_PIP_ARGS:-}" \
  "python -c 'import torch, transformers, trl, peft, accelerate, datasets'" \
  'several GB the first time: torch brings CUDA libraries'
