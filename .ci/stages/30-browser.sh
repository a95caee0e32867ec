#!/usr/bin/env bash
# CI stage: the `browser`-marked tests (the page in a real headless Chromium, driven by Playwright's pip package:
# a demo scan appears and progresses live, Cancel stops it). Installs Debian's chromium when missing (never
# `playwright install`) and points the tests at it with SWARM_OBS_CHROMIUM; with CI=true a missing browser then
# fails instead of skipping. The tests start and stop their own server on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/../.."
make .venv/.installed
if ! command -v chromium >/dev/null 2>&1; then
  apt-get -o DPkg::Lock::Timeout=600 update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y chromium
fi
SWARM_OBS_CHROMIUM="$(command -v chromium)"
export SWARM_OBS_CHROMIUM
exec .venv/bin/python -m pytest -q -m browser -p no:cacheprovider tests/server "$@"
