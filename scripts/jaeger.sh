#!/usr/bin/env bash
# A real Jaeger v2 (all-in-one) for the end-to-end tests and for local use, with nothing but Go and its module proxy.
#
#   scripts/jaeger.sh build          go install the pinned Jaeger into ~/.cache/swarm-observability/jaeger/bin (reused)
#   scripts/jaeger.sh start [DIR]    start it on 127.0.0.1 only, in-memory storage, free ports; prints env lines
#   scripts/jaeger.sh stop [DIR]     stop the one started with that DIR, by its pid
#   scripts/jaeger.sh path           print where the binary is (or will be)
#
# `start` writes DIR/config.yaml, DIR/jaeger.pid, DIR/jaeger.log and DIR/env (OTLP/query URLs as shell assignments).
# Every receiver and the query server are bound to 127.0.0.1 explicitly: the stock all-in-one config would bind
# 0.0.0.0 (or `localhost`, which may resolve to ::1 too), and other people's servers share this machine.
set -euo pipefail

JAEGER_VERSION="${JAEGER_VERSION:-v1.76.0}"   # module tag; the v1.x tags carry the Jaeger v2 binary (cmd/jaeger)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Built once per machine, outside the clone, so every clone (CI's fresh one too) reuses the binary.
JAEGER_HOME="${JAEGER_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/swarm-observability/jaeger}"
JAEGER_BIN="${JAEGER_BIN:-$JAEGER_HOME/bin/jaeger}"
STAMP="$JAEGER_HOME/bin/.version"

die() { echo "jaeger.sh: $*" >&2; exit 1; }

build() {
  if [[ -x "$JAEGER_BIN" && -f "$STAMP" && "$(cat "$STAMP")" == "$JAEGER_VERSION" ]]; then
    echo "jaeger.sh: reusing $JAEGER_BIN ($JAEGER_VERSION)"
    return 0
  fi
  command -v go >/dev/null 2>&1 || die "cannot build Jaeger: 'go' is not on PATH (install Go >= 1.24)"
  mkdir -p "$JAEGER_HOME/bin"
  local log="$JAEGER_HOME/build.log" t0=$SECONDS
  : >"$log"
  echo "jaeger.sh: building github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION (several minutes on 2 cores)"
  # `go install module/cmd/jaeger@version` refuses this module (its go.mod has a replace directive), so fetch the
  # module through the proxy and install its cmd/jaeger from inside the downloaded source instead: same code, same
  # pinned dependencies (its go.sum), same result.
  local src
  if ! src="$(go mod download -json "github.com/jaegertracing/jaeger@$JAEGER_VERSION" 2>>"$log" \
      | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')" || [[ -z "$src" ]]; then
    die "cannot download github.com/jaegertracing/jaeger@$JAEGER_VERSION: $(tail -n 1 "$log") (full log: $log)"
  fi
  if ! (cd "$src" && GOBIN="$JAEGER_HOME/bin" GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" \
      go install ./cmd/jaeger) >>"$log" 2>&1; then
    die "go install of Jaeger $JAEGER_VERSION failed: $(grep -v '^go: downloading' "$log" | tail -n 1) (full log: $log)"
  fi
  echo "$JAEGER_VERSION" >"$STAMP"
  echo "jaeger.sh: built $JAEGER_BIN in $((SECONDS - t0)) s"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_config() {  # DIR: a config with every listener on 127.0.0.1 and a fresh free port (kept for restarts)
  local dir="$1" grpc http query query_grpc health
  grpc=$(free_port); http=$(free_port); query=$(free_port); query_grpc=$(free_port); health=$(free_port)
  cat >"$dir/config.yaml" <<YAML
# Jaeger v2 all-in-one, test edition: OTLP in, memory storage, query API out; nothing beyond 127.0.0.1.
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    resource:
      service.name: jaeger
    metrics:
      level: none
    traces:
      level: none
    logs:
      level: info
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: 127.0.0.1:$health
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    max_clock_skew_adjust: 0s
    enable_tracing: false   # Jaeger's own spans would go to localhost:4317, whoever listens there
    http:
      endpoint: 127.0.0.1:$query
    grpc:
      endpoint: 127.0.0.1:$query_grpc
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$grpc
      http:
        endpoint: 127.0.0.1:$http
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
  cat >"$dir/env" <<ENV
JAEGER_OTLP_GRPC_ENDPOINT=http://127.0.0.1:$grpc
JAEGER_OTLP_HTTP_ENDPOINT=http://127.0.0.1:$http
JAEGER_QUERY_URL=http://127.0.0.1:$query
JAEGER_HEALTH_URL=http://127.0.0.1:$health/status
ENV
}

running_pid() {  # DIR: the pid of the Jaeger started with DIR's config, if it is still that process
  local dir="$1" pid
  [[ -f "$dir/jaeger.pid" ]] || return 1
  pid="$(cat "$dir/jaeger.pid")"
  [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "--config $dir/config.yaml" || return 1
  echo "$pid"
}

start() {  # [DIR]: start (or report the running) Jaeger of DIR; a second start after stop reuses its ports
  local dir="${1:-$JAEGER_HOME/run}" pid
  [[ -x "$JAEGER_BIN" ]] || die "no Jaeger binary at $JAEGER_BIN: run 'scripts/jaeger.sh build' (or 'make jaeger') first"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  if pid="$(running_pid "$dir")"; then
    cat "$dir/env"; echo "JAEGER_PID=$pid"; return 0
  fi
  [[ -f "$dir/config.yaml" && -f "$dir/env" ]] || write_config "$dir"
  "$JAEGER_BIN" --config "$dir/config.yaml" >>"$dir/jaeger.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$dir/jaeger.pid"
  # shellcheck disable=SC1091
  local query health; query="$(sed -n 's/^JAEGER_QUERY_URL=//p' "$dir/env")"; health="$(sed -n 's/^JAEGER_HEALTH_URL=//p' "$dir/env")"
  local deadline=$((SECONDS + ${JAEGER_START_TIMEOUT:-60}))
  until curl -fsS -o /dev/null "$health" 2>/dev/null && curl -fsS -o /dev/null "$query/api/v3/services" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      die "Jaeger exited while starting: $(grep -i 'error' "$dir/jaeger.log" | tail -n 1) (log: $dir/jaeger.log)"
    fi
    if ((SECONDS >= deadline)); then
      kill "$pid" 2>/dev/null || true
      die "Jaeger did not answer on $query within ${JAEGER_START_TIMEOUT:-60} s (log: $dir/jaeger.log)"
    fi
    sleep 0.2
  done
  cat "$dir/env"; echo "JAEGER_PID=$pid"
}

stop() {  # [DIR]: stop the Jaeger of DIR by its pid (TERM, then KILL after 10 s)
  local dir="${1:-$JAEGER_HOME/run}" pid
  dir="$(cd "$dir" 2>/dev/null && pwd)" || return 0
  pid="$(running_pid "$dir")" || { rm -f "$dir/jaeger.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/jaeger.pid"
}

case "${1:-build}" in
  build | start | stop) "${1:-build}" "${@:2}" ;;
  path) echo "$JAEGER_BIN" ;;
  *) die "usage: scripts/jaeger.sh build | start [DIR] | stop [DIR] | path" ;;
esac
