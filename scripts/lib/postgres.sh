# Helpers to run a private PostgreSQL cluster, sourced by scripts/dev and scripts/test.
# The cluster runs as the invoking user, or as `postgres` when invoked as root (initdb
# refuses to run as root).

pg_bindir() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

# Installs Debian's PostgreSQL when no server binaries are present.
pg_ensure_installed() {
    if pg_bindir >/dev/null; then
        return 0
    fi
    echo "PostgreSQL server binaries not found; installing the OS package" >&2
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    pg_bindir >/dev/null || { echo "PostgreSQL install failed" >&2; return 1; }
}

# Runs a command as the cluster's owner.
pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# pg_init DATA_DIR: creates a cluster with a trusted `postgres` superuser (loopback only).
pg_init() {
    local data="$1" bin
    bin="$(pg_bindir)"
    mkdir -p "$data"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$data" "$(dirname "$data")"
    pg_as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 \
        --locale=C.UTF-8 >/dev/null
}

# pg_start DATA_DIR PORT SOCKET_DIR [extra postgres -c options...]
pg_start() {
    local data="$1" port="$2" sockdir="$3" bin
    shift 3
    bin="$(pg_bindir)"
    mkdir -p "$sockdir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$sockdir"
    local opts="-p $port -k $sockdir -c listen_addresses=127.0.0.1 $*"
    pg_as_owner "$bin/pg_ctl" -D "$data" -l "$data/postgres.log" -o "$opts" -w -t 60 start >/dev/null
}

# pg_stop DATA_DIR: fast shutdown; quiet when the cluster is not running.
pg_stop() {
    local data="$1" bin
    bin="$(pg_bindir)" || return 0
    [ -f "$data/postmaster.pid" ] || return 0
    pg_as_owner "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}
