#!/usr/bin/env bash
# Make sure a PostgreSQL server answers on $GRAPHDIR_PG_HOST:$GRAPHDIR_PG_PORT (default 127.0.0.1:5432,
# user postgres, trust auth: what this project's machines provide), starting the local cluster when
# it is installed but stopped, and installing Debian's postgresql package when there is none.
# Then create one throwaway database for this test run and print its URL on stdout (the only output
# on stdout; progress goes to stderr). scripts/pg-down.sh drops it and every database named after it.
set -euo pipefail
HOST="${GRAPHDIR_PG_HOST:-127.0.0.1}"
PORT="${GRAPHDIR_PG_PORT:-5432}"
ADMIN="${GRAPHDIR_PG_USER:-postgres}"

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

start_local() {
    if ! command -v pg_isready >/dev/null 2>&1; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            echo "pg-up: installing PostgreSQL (Debian's postgresql package)" >&2
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2 || return 1
        else
            return 1
        fi
    fi
    ready && return 0
    echo "pg-up: PostgreSQL is not answering on $HOST:$PORT; starting the local cluster" >&2
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters --no-header 2>/dev/null | while read -r ver name _; do
            pg_ctlcluster "$ver" "$name" start >&2 2>&1 || true
        done
    fi
    ready || service postgresql start >&2 2>&1 || true
    for _ in $(seq 1 30); do
        ready && return 0
        sleep 1
    done
    return 1
}

if ! ready && ! start_local; then
    echo "pg-up: no PostgreSQL server on $HOST:$PORT and none could be started" >&2
    exit 1
fi
DB="gd_run_$(date +%s)_$$"
psql -q -h "$HOST" -p "$PORT" -U "$ADMIN" -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB" >&2
echo "postgresql://$ADMIN@$HOST:$PORT/$DB"
