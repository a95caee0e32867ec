#!/usr/bin/env bash
# CI stage: the `postgres`-marked tests (event store conformance and chaos, checkpoints, control over
# LISTEN/NOTIFY, live tail, the multi-worker scale-out test) against a real PostgreSQL. `.ci/with-postgres.sh`
# installs Debian's postgresql when missing, starts a throwaway cluster on a free loopback port, exports
# SWARM_OBS_TEST_PG_URL and stops the server by pid when the tests end. CI=true turns an unreachable server
# into a failure instead of a skip.
set -euo pipefail
cd "$(dirname "$0")/../.."
make .venv/.installed
exec .ci/with-postgres.sh .venv/bin/python -m pytest -q -m postgres -p no:cacheprovider "$@"
