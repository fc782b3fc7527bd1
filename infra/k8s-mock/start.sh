#!/usr/bin/env bash
# The mock Kubernetes API server for tests (src/MockApiServer.java: fabric8's CRUD mock server
# plus pod logs) on 127.0.0.1, plain HTTP.
#
#   start.sh [PORT]        prepare if needed, then serve until killed (PORT 0 or omitted: a free
#                          port); prints "k8s-mock ready http://127.0.0.1:PORT" once listening
#   start.sh --fetch-only  prepare only (CI's setup step)
#
# With K8S_MOCK_TOKEN set, requests must carry "Authorization: Bearer $K8S_MOCK_TOKEN" (else 401).
#
# Preparing fetches the jars named by pom.xml from Maven Central into .lib/jars and compiles the
# main class into .lib/classes, once: later runs reuse them until pom.xml or the source changes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
lib="$here/.lib"

for tool in java javac mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "k8s-mock: '$tool' not found: install a JDK 17+ and Maven (Debian: apt-get install openjdk-17-jdk-headless maven)" >&2
    exit 2
  fi
done

prepare() {
  mkdir -p "$lib"
  # One preparer at a time; the others wait and then find the work done.
  exec 9>"$lib/.lock"
  flock 9
  local pom_sum src_sum
  pom_sum=$(sha256sum <"$here/pom.xml" | cut -d' ' -f1)
  src_sum=$(cat "$here/pom.xml" "$here/src/MockApiServer.java" | sha256sum | cut -d' ' -f1)
  if [[ "$(cat "$lib/jars.sum" 2>/dev/null)" != "$pom_sum" ]]; then
    rm -rf "$lib/jars" "$lib/jars.sum" "$lib/classes.sum"
    echo "k8s-mock: fetching jars from Maven Central (once)" >&2
    if ! mvn -B -f "$here/pom.xml" \
      org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$lib/jars" >"$lib/mvn.log" 2>&1; then
      tail -n 40 "$lib/mvn.log" >&2
      echo "k8s-mock: fetching the jars failed (full log: $lib/mvn.log)" >&2
      exit 1
    fi
    echo "$pom_sum" >"$lib/jars.sum"
  fi
  if [[ "$(cat "$lib/classes.sum" 2>/dev/null)" != "$src_sum" ]]; then
    rm -rf "$lib/classes"
    javac -d "$lib/classes" -cp "$lib/jars/*" "$here/src/MockApiServer.java" >&2
    echo "$src_sum" >"$lib/classes.sum"
  fi
  exec 9>&-
}

prepare
if [[ "${1:-}" == "--fetch-only" ]]; then
  exit 0
fi

# C1 only and a small heap: it starts in about a second and needs little.
exec java -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m \
  -Djava.util.logging.config.file=/dev/null \
  -cp "$lib/classes:$lib/jars/*" MockApiServer "${1:-0}"
