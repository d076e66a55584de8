#!/bin/sh
# Starts a throwaway PostgreSQL cluster for ComfyGate's Postgres tests and prints its URL.
#
# Usage: scripts/start-test-postgres.sh [port]        (default port 55432)
#        export COMFYGATE_TEST_POSTGRES_URL="$(scripts/start-test-postgres.sh)"
#
# Installs nothing: it uses the server binaries already on the machine (Debian's
# /usr/lib/postgresql/<version>/bin, or initdb on PATH). Idempotent: an existing cluster is reused and
# started only when it is not running. The cluster lives in ${COMFYGATE_PG_DIR:-/tmp/comfygate-pg-<port>},
# listens on 127.0.0.1 only, and lets the superuser in through its Unix socket without a password. It takes up to 400
# connections: the suite runs its PostgreSQL tests side by side, each store with a pool of its own (PostgreSQL's
# default of 100 was exhausted on CI).
# TCP connections need a password: role `comfygate` (password `comfygate`, may create databases, which
# the tests do once per test) owns database `comfygate`. When run as root, the server runs as user
# `postgres` because PostgreSQL refuses to run as root.
set -eu

port="${1:-55432}"
base="${COMFYGATE_PG_DIR:-/tmp/comfygate-pg-$port}"
case "$base" in /*) ;; *) base="$PWD/$base" ;; esac
data="$base/data"
socket_dir="$base"

bindir=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/initdb" ] && [ -x "$candidate/psql" ]; then bindir="$candidate"; break; fi
done
if [ -z "$bindir" ] && command -v initdb >/dev/null 2>&1; then
    bindir="$(dirname "$(readlink -f "$(command -v initdb)")")"
fi
if [ -z "$bindir" ]; then
    echo "start-test-postgres: no PostgreSQL server binaries found (install postgresql)" >&2
    exit 1
fi

# Runs a command as the cluster owner: `postgres` when we are root, ourselves otherwise.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

mkdir -p "$base"
if [ "$(id -u)" -eq 0 ]; then chown postgres "$base"; fi
# The server tools complain when the cluster owner cannot read the current directory.
cd "$base"

if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-locale >"$base/initdb.log" 2>&1 \
        || { cat "$base/initdb.log" >&2; exit 1; }
fi

if ! as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_owner "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -w \
        -o "-p $port -k $socket_dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400" start >/dev/null \
        || { cat "$base/server.log" >&2; exit 1; }
fi

psql() { as_owner "$bindir/psql" -h "$socket_dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }

if [ "$(psql -c "SELECT 1 FROM pg_roles WHERE rolname = 'comfygate'")" != "1" ]; then
    psql -c "CREATE ROLE comfygate LOGIN CREATEDB PASSWORD 'comfygate'"
fi
if [ "$(psql -c "SELECT 1 FROM pg_database WHERE datname = 'comfygate'")" != "1" ]; then
    psql -c "CREATE DATABASE comfygate OWNER comfygate"
fi

echo "postgres://comfygate:comfygate@127.0.0.1:$port/comfygate?sslmode=disable"
