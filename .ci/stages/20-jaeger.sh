#!/usr/bin/env bash
# CI stage: the `jaeger`-marked end-to-end tests (tests/e2e) against a real Jaeger v2.
# `scripts/jaeger.sh build` reuses ~/.cache/swarm-observability/jaeger/bin/jaeger (kept across clones) when it is there (a later run costs seconds) or builds the
# pinned release with Go and the module proxy (one line saying why when it cannot). The stage then starts it on
# 127.0.0.1 with in-memory storage on free ports, exports JAEGER_QUERY_URL and the OTLP endpoints, runs the marker
# (CI=true: an unreachable Jaeger fails instead of skipping; the outage test starts its own from the binary) and
# stops what it started by its pid on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
make .venv/.installed
scripts/jaeger.sh build
run_dir="$(mktemp -d "${TMPDIR:-/tmp}/swarm-obs-jaeger.XXXXXX")"
trap 'scripts/jaeger.sh stop "$run_dir"; rm -rf "$run_dir"' EXIT
started="$(scripts/jaeger.sh start "$run_dir")"
set -a
eval "$started"
set +a
echo "== Jaeger $JAEGER_QUERY_URL (pid $JAEGER_PID; OTLP $JAEGER_OTLP_HTTP_ENDPOINT, $JAEGER_OTLP_GRPC_ENDPOINT)"
.venv/bin/python -m pytest -q -m jaeger -p no:cacheprovider "$@"
