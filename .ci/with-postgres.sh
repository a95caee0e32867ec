#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL cluster: `.ci/with-postgres.sh CMD [ARGS...]`.
#
# * Reuses a server the caller already has: when SWARM_OBS_TEST_PG_URL is set, CMD just runs.
# * Otherwise finds Debian's PostgreSQL binaries (installing the `postgresql` package with apt when they are
#   missing and we are root), runs `initdb` in a fresh temporary folder, starts the server with `pg_ctl` on a
#   free 127.0.0.1 port (its unix socket in the same folder, nothing in /var/run), exports
#   SWARM_OBS_TEST_PG_URL=postgresql://postgres@127.0.0.1:PORT/postgres and runs CMD.
# * On exit (normal, error or signal) stops the server it started by the pid in postmaster.pid (fast shutdown,
#   SIGKILL after 20 s) and deletes the folder. Exits with CMD's status.
# * As root the server runs as the `postgres` user (PostgreSQL refuses to run as root).
#
# Used by .ci/stages/10-postgres.sh and `make test-postgres`. SWARM_OBS_PG_KEEP=1 keeps the folder (logs).
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

if [[ -n "${SWARM_OBS_TEST_PG_URL:-}" ]]; then
  echo "with-postgres: using the server in SWARM_OBS_TEST_PG_URL" >&2
  exec "$@"
fi

find_bindir() {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n -r); do
    if [[ -x "$dir/initdb" && -x "$dir/pg_ctl" ]]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

BINDIR="$(find_bindir || true)"
if [[ -z "$BINDIR" ]]; then
  if [[ "$(id -u)" -ne 0 ]]; then
    echo "with-postgres: no PostgreSQL binaries (initdb, pg_ctl) found; install Debian's 'postgresql' package" >&2
    exit 1
  fi
  echo "with-postgres: installing Debian's postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq postgresql >/dev/null
  BINDIR="$(find_bindir)"
fi

RUN_AS=()
if [[ "$(id -u)" -eq 0 ]]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  RUN_AS=(runuser -u postgres --)
fi

WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/swarm-obs-pg.XXXXXX")"
DATA="$WORKDIR/data"
PIDFILE="$DATA/postmaster.pid"
if [[ ${#RUN_AS[@]} -gt 0 ]]; then
  chown postgres "$WORKDIR"
fi
chmod 700 "$WORKDIR"

stop_server() {
  local pid
  if [[ -f "$PIDFILE" ]]; then
    pid="$(head -n1 "$PIDFILE")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$pid" 2>/dev/null; then
        echo "with-postgres: server $pid did not stop in 20 s; SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
      fi
    fi
  fi
  if [[ "${SWARM_OBS_PG_KEEP:-0}" == "1" ]]; then
    echo "with-postgres: kept $WORKDIR" >&2
  else
    rm -rf "$WORKDIR"
  fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

"${RUN_AS[@]}" "$BINDIR/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
  >"$WORKDIR/initdb.log" 2>&1 || { cat "$WORKDIR/initdb.log" >&2; exit 1; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

started=""
for _ in 1 2 3 4 5; do
  PORT="$(free_port)"
  # fsync stays on: the chaos tests rely on what a real server does. max_connections covers the parallel
  # workers of the multi-worker test; unix socket in the folder so nothing else on the machine is touched.
  if "${RUN_AS[@]}" "$BINDIR/pg_ctl" -D "$DATA" -l "$WORKDIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$WORKDIR -c max_connections=200" \
    start >/dev/null; then
    started=1
    break
  fi
  echo "with-postgres: start on port $PORT failed, retrying on another port" >&2
  tail -n 5 "$WORKDIR/server.log" >&2 || true
done
if [[ -z "$started" ]]; then
  echo "with-postgres: could not start PostgreSQL" >&2
  exit 1
fi

export SWARM_OBS_TEST_PG_URL="postgresql://postgres@127.0.0.1:$PORT/postgres"
echo "with-postgres: PostgreSQL $("$BINDIR/postgres" --version | awk '{print $3}') (pid $(head -n1 "$PIDFILE")) at $SWARM_OBS_TEST_PG_URL" >&2
set +e
"$@"
status=$?
set -e
exit "$status"
