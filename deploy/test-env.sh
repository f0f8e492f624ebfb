#!/usr/bin/env bash
# The servers the tests run against, found or started, and their addresses exported:
#
#   deploy/test-env.sh COMMAND [ARGS...]   start what is missing, then run COMMAND with
#                                          KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL set
#   . deploy/test-env.sh                   the same variables, into the current shell
#   deploy/test-env.sh                     prints `export ...` lines (for eval)
#
# A variable already set is used as it is (an external broker or database); otherwise
# deploy/kafka.sh and deploy/postgres.sh start local servers on 127.0.0.1. When either
# cannot be had, this fails: the tests are never skipped for want of a server.
#
# Under CI (CI=true) with a COMMAND, the servers that this script started are stopped when
# COMMAND ends, so that the run leaves nothing behind (BACKORDERS_KEEP_SERVERS=1 keeps
# them). Otherwise COMMAND replaces this script and the servers keep running for the
# next run (`make services-stop` stops them).

_backorders_test_env() {
    local deploy out line
    deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)" || return 1
    _BACKORDERS_STARTED=()

    if command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; then
        echo "test-env: a Docker engine answers: testcontainers could start these servers;" \
            "the local servers of deploy/ are used here" >&2
    fi

    if [[ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
        echo "test-env: Kafka: using KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS" >&2
    else
        bash "$deploy/kafka.sh" status >/dev/null 2>&1 || _BACKORDERS_STARTED+=(kafka)
        if ! out="$(bash "$deploy/kafka.sh" start)"; then
            echo "test-env: error: Kafka could not be started (deploy/kafka.sh start failed, see above)" >&2
            return 1
        fi
        line="${out##*$'\n'}"
        if [[ "$line" != KAFKA_BOOTSTRAP_SERVERS=?* ]]; then
            echo "test-env: error: deploy/kafka.sh start printed no KAFKA_BOOTSTRAP_SERVERS line" >&2
            return 1
        fi
        export KAFKA_BOOTSTRAP_SERVERS="${line#KAFKA_BOOTSTRAP_SERVERS=}"
    fi

    if [[ -n "${DATABASE_URL:-}" ]]; then
        echo "test-env: PostgreSQL: using the DATABASE_URL that is set" >&2
    else
        bash "$deploy/postgres.sh" status >/dev/null 2>&1 || _BACKORDERS_STARTED+=(postgres)
        if ! out="$(bash "$deploy/postgres.sh" start)"; then
            echo "test-env: error: PostgreSQL could not be started (deploy/postgres.sh start failed, see above)" >&2
            return 1
        fi
        line="${out##*$'\n'}"
        if [[ "$line" != DATABASE_URL=?* ]]; then
            echo "test-env: error: deploy/postgres.sh start printed no DATABASE_URL line" >&2
            return 1
        fi
        export DATABASE_URL="${line#DATABASE_URL=}"
    fi
    echo "test-env: KAFKA_BOOTSTRAP_SERVERS=$KAFKA_BOOTSTRAP_SERVERS DATABASE_URL=$DATABASE_URL" >&2
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: set the variables in the caller's shell, change none of its options.
    _backorders_test_env
    return $?
fi

set -euo pipefail
_backorders_test_env || exit 1

if (($# == 0)); then
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%q\nexport DATABASE_URL=%q\n' "$KAFKA_BOOTSTRAP_SERVERS" "$DATABASE_URL"
    exit 0
fi

if [[ "${CI:-}" == true && "${BACKORDERS_KEEP_SERVERS:-}" != 1 && ${#_BACKORDERS_STARTED[@]} -gt 0 ]]; then
    deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    status=0
    "$@" || status=$?
    for server in "${_BACKORDERS_STARTED[@]}"; do
        echo "test-env: CI: stopping $server, started for this run" >&2
        bash "$deploy/$server.sh" stop || true
    done
    exit "$status"
fi
exec "$@"
