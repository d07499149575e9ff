#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the tests marked `postgres`.
# Sourced by .ci/run: exports BASSET_HPO_TEST_PG_URL and registers a stop on exit.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

pg_dir=$(mktemp -d /tmp/basset-ci-pg.XXXXXX)
pg_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
run_as=()
if [ "$(id -u)" = 0 ]; then
    chown postgres "$pg_dir"
    run_as=(runuser -u postgres --)
fi
"${run_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 >/dev/null
"${run_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
    -o "-h 127.0.0.1 -p $pg_port -k $pg_dir -c max_connections=200" start >/dev/null
trap '"${run_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m fast stop >/dev/null 2>&1 || true' EXIT

psql -h "$pg_dir" -p "$pg_port" -U postgres -q -c "CREATE ROLE basset LOGIN PASSWORD 'basset-ci-secret'" \
    -c "CREATE DATABASE basset_hpo OWNER basset"
export BASSET_HPO_TEST_PG_URL="postgresql+psycopg://basset:basset-ci-secret@127.0.0.1:$pg_port/basset_hpo"
echo "PostgreSQL for the tests on 127.0.0.1:$pg_port"
