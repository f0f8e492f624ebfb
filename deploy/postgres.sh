#!/usr/bin/env bash
# PostgreSQL 15 from Debian's packages (cluster 15/main), with the role and the database
# the service and its tests use. Run as root (or as the postgres user).
#
#   deploy/postgres.sh [start]   install (only when PostgreSQL 15 is missing), start the
#                                cluster, wait until it accepts connections, create role
#                                and database (idempotent); prints DATABASE_URL=... on stdout
#                                (everything else goes to stderr)
#   deploy/postgres.sh stop      stop the cluster
#   deploy/postgres.sh status    exit 0 when the cluster is online and answers, 3 otherwise
#
# Settings (environment): PG_VERSION (15), PG_CLUSTER (main), PG_START_TIMEOUT (60 s).
set -euo pipefail

PG_VERSION="${PG_VERSION:-15}"
PG_CLUSTER="${PG_CLUSTER:-main}"
PG_START_TIMEOUT="${PG_START_TIMEOUT:-60}"
DB_USER="backorders"
DB_PASSWORD="backorders"
DB_NAME="backorders"
HOST="127.0.0.1"

say() { echo "postgres.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

installed() { [[ -x "/usr/lib/postgresql/$PG_VERSION/bin/postgres" ]] && command -v pg_ctlcluster >/dev/null 2>&1; }

install() {
    installed && return 0
    say "PostgreSQL $PG_VERSION is not installed: trying apt-get install postgresql-$PG_VERSION"
    [[ "$(id -u)" == 0 ]] || die "PostgreSQL $PG_VERSION is not installed and installing it needs root (apt-get install postgresql-$PG_VERSION)"
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL $PG_VERSION is not installed and there is no apt-get to install it"
    apt-get update -qq >&2 || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$PG_VERSION" >&2 \
        || die "apt-get install postgresql-$PG_VERSION failed: install PostgreSQL $PG_VERSION by hand"
    installed || die "postgresql-$PG_VERSION installed, but /usr/lib/postgresql/$PG_VERSION/bin/postgres is missing"
}

# "online", "down", ... or nothing when the cluster does not exist.
cluster_status() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c { print $4 }'; }
cluster_port() { pg_lsclusters -h 2>/dev/null | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c { print $3 }'; }

# Run SQL (stdin) as the postgres superuser over the local socket.
as_postgres() {
    if [[ "$(id -un)" == postgres ]]; then
        (cd / && psql -X -q -v ON_ERROR_STOP=1 -p "$(cluster_port)" -d postgres)
    elif [[ "$(id -u)" == 0 ]]; then
        (cd / && su postgres -s /bin/sh -c "psql -X -q -v ON_ERROR_STOP=1 -p $(cluster_port) -d postgres")
    else
        die "run as root or as postgres to create the role and the database"
    fi
}

url() { echo "DATABASE_URL=postgresql+asyncpg://$DB_USER:$DB_PASSWORD@$HOST:$(cluster_port)/$DB_NAME"; }

wait_ready() {
    local port deadline=$((SECONDS + PG_START_TIMEOUT))
    port="$(cluster_port)"
    until pg_isready -q -h "$HOST" -p "$port"; do
        if ((SECONDS >= deadline)); then
            say "not accepting connections on $HOST:$port after ${PG_START_TIMEOUT}s; last lines of its log:"
            tail -n 30 "/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log" >&2 2>/dev/null || true
            exit 1
        fi
        sleep 0.5
    done
}

start() {
    install
    if [[ -z "$(cluster_status)" ]]; then
        [[ "$(id -u)" == 0 ]] || die "cluster $PG_VERSION/$PG_CLUSTER does not exist (create it as root: pg_createcluster $PG_VERSION $PG_CLUSTER)"
        say "creating cluster $PG_VERSION/$PG_CLUSTER"
        pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >&2 || die "pg_createcluster $PG_VERSION $PG_CLUSTER failed"
    fi
    if [[ "$(cluster_status)" != online ]]; then
        say "starting cluster $PG_VERSION/$PG_CLUSTER"
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start >&2 || {
            tail -n 30 "/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log" >&2 2>/dev/null || true
            die "pg_ctlcluster $PG_VERSION $PG_CLUSTER start failed"
        }
    else
        say "cluster $PG_VERSION/$PG_CLUSTER is already running"
    fi
    wait_ready
    # Role and database, idempotently; the password is set on every start so that a role
    # left with another one still works. CREATE DATABASE cannot run in a DO block: \gexec.
    as_postgres <<SQL >&2
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$DB_USER', '$DB_PASSWORD')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
ALTER ROLE "$DB_USER" WITH LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$DB_NAME', '$DB_USER')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
ALTER DATABASE "$DB_NAME" OWNER TO "$DB_USER";
SQL
    # The way the service logs in: TCP, password.
    PGPASSWORD="$DB_PASSWORD" psql -X -q -w -h "$HOST" -p "$(cluster_port)" -U "$DB_USER" -d "$DB_NAME" \
        -tAc 'SELECT 1' >/dev/null \
        || die "cannot log in as $DB_USER on $HOST:$(cluster_port) with its password (pg_hba.conf?)"
    say "role and database '$DB_NAME' ready on $HOST:$(cluster_port)"
    url
}

stop() {
    if ! installed || [[ -z "$(cluster_status)" ]]; then
        say "not installed or no cluster $PG_VERSION/$PG_CLUSTER"
        return 0
    fi
    if [[ "$(cluster_status)" == online ]]; then
        pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop >&2
        say "stopped cluster $PG_VERSION/$PG_CLUSTER"
    else
        say "cluster $PG_VERSION/$PG_CLUSTER is not running"
    fi
}

status() {
    if installed && [[ "$(cluster_status)" == online ]] && pg_isready -q -h "$HOST" -p "$(cluster_port)"; then
        say "cluster $PG_VERSION/$PG_CLUSTER is online on $HOST:$(cluster_port)"
        url
        return 0
    fi
    say "cluster $PG_VERSION/$PG_CLUSTER is not running (or not installed)"
    return 3
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac
