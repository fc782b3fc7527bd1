# shellcheck shell=bash
# A project-local Python venv with a requirements file installed, sourced by the install scripts
# (infra/trainer, infra/s3). Idempotent: a hash of the requirements (and the Python version) is
# kept in the venv, and a venv that matches it is left alone (near-instant).
#
#   ensure_python_venv NAME VENV REQUIREMENTS BASE_PYTHON PIP_ARGS CHECK NOTE
#     NAME     prefix of the log lines        PIP_ARGS  extra pip arguments (a mirror, an index)
#     CHECK    command run with the venv's bin first on PATH once installed (e.g. an import)
#     NOTE     said while installing (e.g. how big it is)

ensure_python_venv() {
  local name=$1 venv=$2 requirements=$3 base_python=$4 pip_args=$5 check=$6 note=$7
  local stamp="$venv/.meteor-requirements.sha256"
  log() { echo "$name: $*" >&2; }

  local want
  want="$( { cat "$requirements"; "$base_python" -c 'import sys; print(sys.version_info[:2])'; } | sha256sum | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "$venv is up to date with $requirements"
    return 0
  fi

  local started=$SECONDS
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv ($("$base_python" --version 2>&1))"
    "$base_python" -m venv "$venv"
  fi
  rm -f "$stamp"
  log "installing $requirements into $venv${note:+ ($note)}"
  # shellcheck disable=SC2086 # pip_args is a list of arguments
  "$venv/bin/python" -m pip install --disable-pip-version-check -r "$requirements" $pip_args >&2
  log "checking: $check"
  PATH="$venv/bin:$PATH" bash -c "$check" >&2
  echo "$want" >"$stamp"
  log "done in $((SECONDS - started)) s"
}
