#!/usr/bin/env bash
# Records the workflow histories of a version of meteor into test/fixtures/histories/<name>/,
# for test/e2e/history-fixtures.test.ts to replay against the current code:
#
#   bash scripts/record-histories.sh <git-ref> [name]     # e.g. v0.2.0 (name defaults to the ref)
#   npm run record-histories -- v0.2.0
#
# The ref is checked out in a temporary git worktree; this checkout's recorder
# (scripts/record-histories.ts and its vitest config) is copied in and run there, so the version's
# own workflows, worker, harness and global setup (PostgreSQL, Temporal dev server) make the
# histories. node_modules is linked from here when the ref's package-lock.json is this one's,
# otherwise installed with `npm ci`. Takes a few minutes; needs no running stack.
set -euo pipefail

ref=${1:?usage: bash scripts/record-histories.sh <git-ref> [name]}
name=${2:-$ref}
case $name in
  *[!A-Za-z0-9._-]*) echo "record-histories: name '$name' must be letters, digits, '.', '_' or '-'" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
commit=$(git -C "$root" rev-parse --verify "$ref^{commit}")

work=$(mktemp -d "${TMPDIR:-/tmp}/meteor-histories-XXXXXX")
tree=$work/tree
out=$work/out
cleanup() {
  git -C "$root" worktree remove --force "$tree" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

git -C "$root" worktree add --detach --quiet "$tree" "$commit"
if [ -d "$root/node_modules" ] && git -C "$root" show "$commit:package-lock.json" | cmp -s - "$root/package-lock.json"; then
  ln -s "$root/node_modules" "$tree/node_modules"
else
  (cd "$tree" && npm ci --no-audit --no-fund)
fi
cp "$root/scripts/record-histories.ts" "$root/scripts/record-histories.vitest.mts" "$tree/scripts/"
# The worktree has no .venv of its own: use this checkout's temporal CLI unless one is named.
if [ -z "${TEMPORAL_CLI_PATH:-}" ] && [ -x "$root/.venv/bin/temporal" ] && ! command -v temporal >/dev/null; then
  export TEMPORAL_CLI_PATH=$root/.venv/bin/temporal
fi

mkdir -p "$out"
started=$(date +%s)
(
  cd "$tree"
  METEOR_HISTORIES_OUT=$out METEOR_HISTORIES_VERSION=$name METEOR_HISTORIES_COMMIT=$commit \
    node_modules/.bin/vitest run --config scripts/record-histories.vitest.mts
)

dest=$root/test/fixtures/histories/$name
rm -rf "$dest"
mkdir -p "$dest"
cp "$out"/*.json "$dest/"
count=$(find "$dest" -name '*.json' ! -name index.json | wc -l)
echo "record-histories: $count histories of $name ($commit) in ${dest#"$root"/}," \
  "$(du -sh "$dest" | cut -f1), recorded in $(($(date +%s) - started)) s"
