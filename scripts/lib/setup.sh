# shellcheck shell=bash
#
# Developer / CI environment set-up for Patriot.
#
# Sourced (not executed) by scripts/run and scripts/test. After it returns:
#   - system packages needed for development are present (installed via apt
#     when running as root or with passwordless sudo),
#   - the virtualenv at <repo>/.venv exists, holds exactly the versions of
#     uv.lock with the project installed in editable mode and the "dev" extra
#     (uv sync --frozen --extra dev), and is activated (PATH, VIRTUAL_ENV),
#   - PATRIOT_DATABASE_URL is exported. When it was not set by the caller, a
#     private PostgreSQL + PostGIS cluster is created on first use under
#     ${PATRIOT_DATA_DIR:-<repo>/.data}/pg, listening only on 127.0.0.1 on its
#     own port (never the system cluster's 5432), and started if needed.
#   - PATRIOT_SHARED_DATA_DIR is exported when <repo>/../shared/data/bekasi
#     exists and the variable was not already set.
#
# The caller's working directory is not changed.
#
# To stop the private cluster:
#   pg_ctl -D <data dir>/pg stop   (as the "postgres" user when root)

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    echo "[setup] error: this file must be sourced, e.g. 'source scripts/lib/setup.sh'" >&2
    exit 1
fi

set -euo pipefail

_setup_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
_setup_venv="$_setup_root/.venv"
_setup_min_pg_major=14
_setup_first_port=55432
_setup_apt_updated=0

_setup_log() { echo "[setup] $*" >&2; }
_setup_die() { echo "[setup] error: $*" >&2; exit 1; }

_setup_is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Run a command without the set-up lock's file descriptor, for commands that
# may leave long-lived processes behind (pg_ctl start, apt-get postinst
# scripts starting services); otherwise those would hold the lock forever.
_setup_nolock() {
    (
        if [[ -n ${_setup_lock_fd:-} ]]; then
            exec {_setup_lock_fd}>&-
        fi
        "$@"
    )
}

# ---------------------------------------------------------------------------
# System packages
# ---------------------------------------------------------------------------

# Install Debian/Ubuntu packages, or fail saying exactly what to install.
_setup_apt_install() {
    local -a pkgs=("$@") sudo=()
    [[ ${#pkgs[@]} -gt 0 ]] || return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        _setup_die "apt-get not found; install these packages: ${pkgs[*]}"
    fi
    if _setup_is_root; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo=(sudo -n)
    else
        _setup_die "not root and no passwordless sudo; install these packages: ${pkgs[*]}
[setup]   e.g.: sudo apt-get install -y ${pkgs[*]}"
    fi
    _setup_log "installing system packages: ${pkgs[*]}"
    if [[ $_setup_apt_updated -eq 0 ]]; then
        _setup_nolock "${sudo[@]}" apt-get update -qq </dev/null >&2 \
            || _setup_die "'apt-get update' failed; install these packages: ${pkgs[*]}"
        _setup_apt_updated=1
    fi
    _setup_nolock "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${pkgs[@]}" </dev/null >&2 \
        || _setup_die "'apt-get install' failed; install these packages: ${pkgs[*]}"
}

# True when the given interpreter is Python >= 3.11.
_setup_python_ok() {
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' \
        >/dev/null 2>&1
}

# True when the given interpreter can create virtualenvs (venv + ensurepip).
_setup_python_has_venv() {
    "$1" -c 'import ensurepip, venv' >/dev/null 2>&1
}

# Sets _setup_python to the first Python >= 3.11 that can create venvs.
# Sets _setup_python_novenv to one that is >= 3.11 but lacks venv support.
_setup_find_python() {
    local cand path
    _setup_python=""
    _setup_python_novenv=""
    for cand in python3 python3.13 python3.12 python3.11 /usr/bin/python3; do
        path="$(command -v "$cand" 2>/dev/null)" || continue
        _setup_python_ok "$path" || continue
        if _setup_python_has_venv "$path"; then
            _setup_python="$path"
            return 0
        fi
        [[ -n $_setup_python_novenv ]] || _setup_python_novenv="$path"
    done
    return 0
}

# Highest installed PostgreSQL server major under /usr/lib/postgresql.
_setup_pg_highest_major() {
    local f major best=""
    for f in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x $f ]] || continue
        major="${f#/usr/lib/postgresql/}"
        major="${major%%/*}"
        [[ $major =~ ^[0-9]+$ ]] || continue
        if [[ -z $best || $major -gt $best ]]; then best="$major"; fi
    done
    echo "$best"
}

_setup_pg_have_server() { [[ -x "/usr/lib/postgresql/$1/bin/postgres" ]]; }
_setup_pg_have_postgis() { [[ -f "/usr/share/postgresql/$1/extension/postgis.control" ]]; }

# ---------------------------------------------------------------------------
# Private PostgreSQL cluster helpers
# ---------------------------------------------------------------------------

# Run a command as the cluster owner: the "postgres" system user when we are
# root (initdb/postgres refuse to run as root), otherwise ourselves.
_setup_pg_run() {
    if _setup_is_root; then
        if [[ $_setup_pg_switch == runuser ]]; then
            (cd / && runuser -u postgres -- "$@")
        else
            # shellcheck disable=SC2016  # expanded by the inner shell
            (cd / && su postgres -s /bin/sh -c 'exec "$0" "$@"' "$@")
        fi
    else
        "$@"
    fi
}

# True when the cluster owner can reach (traverse into) the directory.
_setup_pg_can_reach() {
    # shellcheck disable=SC2016  # expanded by the inner shell
    _setup_pg_run /bin/sh -c 'cd "$1"' sh "$1" >/dev/null 2>&1
}

# True when nothing is bound to 127.0.0.1:<port>.
_setup_port_free() {
    "$_setup_port_python" - "$1" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# Port persisted in the cluster's postgresql.conf (last "port = N" wins).
_setup_pg_conf_port() {
    sed -n 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*\([0-9][0-9]*\).*/\1/p' \
        "$1/postgresql.conf" | tail -n 1
}

# Make a directory (mode 755 when we create it) owned by whoever runs us.
_setup_mkdir() {
    if [[ ! -d $1 ]]; then
        mkdir -p "$1"
        chmod 755 "$1"
    fi
}

# Prints the tail of the server log to stderr.
_setup_pg_log_tail() {
    if [[ -f $_setup_pg_log ]]; then
        echo "[setup] --- last lines of $_setup_pg_log ---" >&2
        tail -n 40 "$_setup_pg_log" >&2 || true
        echo "[setup] ---" >&2
    fi
}

# Is the postmaster recorded in <pgdata>/postmaster.pid alive and serving
# this data directory? Removes the pid file when it is stale (server killed,
# or its PID reused by an unrelated process).
_setup_pg_running() {
    local pgdata="$1" pidfile="$1/postmaster.pid" pid cwd real
    [[ -f $pidfile ]] || return 1
    pid="$(head -n 1 "$pidfile" 2>/dev/null || true)"
    if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
        # A postmaster's working directory is its data directory.
        cwd="$(readlink -f "/proc/$pid/cwd" 2>/dev/null || true)"
        real="$(readlink -f "$pgdata")"
        if [[ -n $cwd && $cwd == "$real" ]]; then
            return 0
        fi
    fi
    _setup_log "removing stale $pidfile (PID ${pid:-?} is not this cluster's server)"
    rm -f "$pidfile"
    return 1
}

# Choose the private cluster's location, honouring PATRIOT_DATA_DIR. When
# running as root and the "postgres" user cannot reach it, fall back to
# /var/lib/patriot/<hash of repo path>.
_setup_pg_locate() {
    local parent="${PATRIOT_DATA_DIR:-$_setup_root/.data}" hash
    [[ $parent == /* ]] || parent="$PWD/$parent"
    _setup_mkdir "$parent"
    parent="$(cd "$parent" && pwd -P)"
    if _setup_is_root && ! _setup_pg_can_reach "$parent"; then
        hash="$(printf '%s' "$_setup_root" | sha256sum | cut -c1-12)"
        _setup_mkdir /var/lib/patriot
        _setup_mkdir "/var/lib/patriot/$hash"
        _setup_log "the 'postgres' user cannot reach $parent (a parent directory is not traversable);"
        _setup_log "using /var/lib/patriot/$hash/pg for the database cluster instead"
        parent="/var/lib/patriot/$hash"
        _setup_pg_can_reach "$parent" \
            || _setup_die "the 'postgres' user cannot reach $parent either"
    fi
    _setup_pg_parent="$parent"
    _setup_pg_data="$parent/pg"
    _setup_pg_log="$parent/pg.log"
}

# Create a new cluster in $_setup_pg_data (atomically: initdb into a temp dir,
# configure it, then rename).
_setup_pg_initdb() {
    local bindir="$1" major="$2" tmp="$_setup_pg_data.new" port
    local -a locale_opt
    local sockdir="$_setup_pg_data"

    port="$_setup_first_port"
    while ! _setup_port_free "$port"; do
        port=$((port + 1))
        [[ $port -le 65535 ]] || _setup_die "no free TCP port on 127.0.0.1 from $_setup_first_port up"
    done

    if grep -qixE 'c\.utf-?8' <<<"$(locale -a 2>/dev/null || true)"; then
        locale_opt=(--locale=C.UTF-8)
    else
        locale_opt=(--no-locale)
    fi

    _setup_log "creating PostgreSQL $major cluster in $_setup_pg_data (port $port)"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    chmod 700 "$tmp"
    if _setup_is_root; then chown postgres: "$tmp"; fi
    if ! _setup_pg_run "$bindir/initdb" -D "$tmp" --auth=trust -U patriot -E UTF8 \
            "${locale_opt[@]}" >"$_setup_pg_parent/initdb.log" 2>&1; then
        tail -n 40 "$_setup_pg_parent/initdb.log" >&2 || true
        rm -rf "$tmp"
        _setup_die "initdb failed (full output in $_setup_pg_parent/initdb.log)"
    fi

    # Unix sockets have a ~107 byte path limit; use TCP only for long paths.
    if [[ ${#sockdir} -gt 80 ]]; then sockdir=""; fi
    cat >>"$tmp/postgresql.conf" <<EOF

# --- Patriot private development/test cluster (scripts/lib/setup.sh) ---
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
shared_buffers = 256MB
max_connections = 200
EOF
    mv "$tmp" "$_setup_pg_data"
}

# Ensure the private cluster exists, is running and has database "patriot"
# with PostGIS; export PATRIOT_DATABASE_URL pointing at it.
_setup_pg_embedded() {
    local major="$1" bindir="/usr/lib/postgresql/$1/bin" port i exists

    if [[ -d $_setup_pg_data && ! -f $_setup_pg_data/PG_VERSION ]]; then
        if rmdir "$_setup_pg_data" 2>/dev/null; then
            :
        else
            _setup_die "$_setup_pg_data exists but is not a PostgreSQL data directory; remove it and re-run"
        fi
    fi
    if [[ ! -d $_setup_pg_data ]]; then
        _setup_pg_initdb "$bindir" "$major"
    fi

    port="$(_setup_pg_conf_port "$_setup_pg_data")"
    [[ -n $port ]] || _setup_die "no 'port = N' line in $_setup_pg_data/postgresql.conf"

    if [[ ! -e $_setup_pg_log ]]; then : >"$_setup_pg_log"; fi
    if _setup_is_root; then chown postgres: "$_setup_pg_log" "$_setup_pg_data"; fi

    if ! _setup_pg_running "$_setup_pg_data"; then
        if ! _setup_port_free "$port"; then
            _setup_die "port $port on 127.0.0.1 (set in $_setup_pg_data/postgresql.conf) is in use by another process.
[setup]   Stop that process, or give this cluster another free port by editing the
[setup]   last 'port = $port' line of that file, then re-run."
        fi
        _setup_log "starting PostgreSQL $major on 127.0.0.1:$port (log: $_setup_pg_log)"
        if ! _setup_nolock _setup_pg_run "$bindir/pg_ctl" -D "$_setup_pg_data" -l "$_setup_pg_log" \
                -w -t 30 start >/dev/null 2>&1; then
            _setup_pg_log_tail
            _setup_die "PostgreSQL failed to start (data: $_setup_pg_data)"
        fi
    fi

    for ((i = 0; i < 60; i++)); do
        if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" -U patriot -d postgres; then
            break
        fi
        sleep 0.5
    done
    if [[ $i -ge 60 ]]; then
        _setup_pg_log_tail
        _setup_die "PostgreSQL on 127.0.0.1:$port not ready after 30 s"
    fi

    _setup_psql() {
        "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U patriot "$@"
    }
    exists="$(_setup_psql -d postgres -tAc "select 1 from pg_database where datname = 'patriot'")" \
        || _setup_die "cannot query PostgreSQL on 127.0.0.1:$port"
    if [[ $exists != 1 ]]; then
        _setup_log "creating database patriot"
        "$bindir/createdb" -h 127.0.0.1 -p "$port" -U patriot patriot \
            || _setup_die "createdb patriot failed"
    fi
    exists="$(_setup_psql -d patriot -tAc "select 1 from pg_extension where extname = 'postgis'")" \
        || _setup_die "cannot query database patriot on 127.0.0.1:$port"
    if [[ $exists != 1 ]]; then
        _setup_log "enabling PostGIS in database patriot"
        _setup_psql -d patriot -c "create extension if not exists postgis" \
            || _setup_die "'create extension postgis' failed (is postgresql-$major-postgis-3 installed?)"
    fi
    unset -f _setup_psql

    export PATRIOT_DATABASE_URL="postgresql+asyncpg://patriot@127.0.0.1:$port/patriot"
    _setup_log "database: $PATRIOT_DATABASE_URL (cluster $_setup_pg_data)"
}

# ---------------------------------------------------------------------------
# Python packages, from uv.lock
# ---------------------------------------------------------------------------

# Put uv, at the version and with the hashes uv.lock records for it, into
# .venv when it does not have that version: a new .venv, one that pip filled,
# or a uv too old to read a lock written by a newer one.
_setup_uv_bootstrap() {
    local python="$_setup_venv/bin/python" req="$_setup_venv/.uv-requirement.txt" want have=""
    "$python" - "$_setup_root/uv.lock" >"$req" <<'PY' \
        || _setup_die "uv.lock has no entry for uv; run 'uv lock' with uv in the dev extra"
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    (uv,) = [p for p in tomllib.load(f)["package"] if p["name"] == "uv"]
hashes = [w["hash"] for w in uv.get("wheels", [])]
if "sdist" in uv:
    hashes.append(uv["sdist"]["hash"])
print(f"uv=={uv['version']}", *(f"--hash={h}" for h in hashes))
PY
    want="$(cut -d' ' -f1 "$req")"
    if [[ -x $_setup_venv/bin/uv ]]; then
        have="uv==$("$_setup_venv/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" || have=""
    fi
    if [[ $have == "$want" ]]; then
        rm -f "$req"
        return 0
    fi
    _setup_log "installing $want into .venv"
    if ! "$python" -m pip --version >/dev/null 2>&1; then
        "$python" -m ensurepip -q >&2 || _setup_die "no pip in .venv and 'ensurepip' failed"
    fi
    "$python" -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
        -r "$req" || _setup_die "installing uv into .venv failed (see above)"
    rm -f "$req"
}

# Make .venv hold exactly what uv.lock says, unless it already did for these
# uv.lock and pyproject.toml (the stamp), so that re-runs cost nothing.
_setup_python_deps() {
    local stamp="$_setup_venv/.uv-lock.sha256" sum
    [[ -f $_setup_root/uv.lock ]] || _setup_die "$_setup_root/uv.lock not found"
    sum="$(cat "$_setup_root/uv.lock" "$_setup_root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
    [[ -f $stamp && "$(cat "$stamp")" == "$sum" ]] && return 0
    rm -f "$stamp"
    _setup_uv_bootstrap
    _setup_log "installing Python dependencies from uv.lock (uv sync --frozen --extra dev)"
    # The project's own .venv and interpreter, whatever the caller's uv settings.
    (cd "$_setup_root" && UV_PROJECT_ENVIRONMENT="$_setup_venv" UV_PYTHON_DOWNLOADS=never \
        "$_setup_venv/bin/uv" sync --frozen --extra dev --python "$_setup_venv/bin/python" \
        --no-progress) \
        || _setup_die "'uv sync --frozen --extra dev' failed (see above)"
    echo "$sum" >"$stamp"
}

# ---------------------------------------------------------------------------
# POC screen front end (poc/): built into poc/dist, which is not in git
# ---------------------------------------------------------------------------

# True when poc/dist is missing or older than anything it is built from.
_setup_poc_stale() {
    local poc="$_setup_root/poc" built="$_setup_root/poc/dist/poc.js"
    [[ -f $built ]] || return 0
    [[ -n "$(find "$poc/src" "$poc/package.json" "$poc/package-lock.json" \
        -newer "$built" -print -quit 2>/dev/null)" ]]
}

# graphql-http's server audits, installed from its lock when the lock changed.
_setup_http_audit() {
    local audit="$_setup_root/tests/http_audit"
    [[ -f $audit/package-lock.json ]] || return 0
    if [[ -f $audit/node_modules/.package-lock.json \
        && ! $audit/package-lock.json -nt $audit/node_modules/.package-lock.json ]]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        _setup_die "the GraphQL-over-HTTP audit (tests/http_audit) needs Node.js and npm; install these packages: nodejs npm"
    fi
    _setup_log "installing the GraphQL-over-HTTP audit (npm ci in tests/http_audit)"
    (cd "$audit" && npm ci --no-audit --no-fund --loglevel=error >&2) \
        || _setup_die "npm ci in tests/http_audit failed (see above)"
}

_setup_poc_build() {
    local poc="$_setup_root/poc"
    [[ -f $poc/package.json ]] || return 0
    _setup_poc_stale || return 0
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        _setup_die "the POC screen (poc/) is built with Node.js and npm, which are missing; install these packages: nodejs npm"
    fi
    _setup_log "building the POC screen (npm ci && npm run build in poc/)"
    (cd "$poc" && npm ci --no-audit --no-fund --loglevel=error >&2 && npm run --silent build >&2) \
        || _setup_die "building the POC screen in poc/ failed (see above)"
    touch "$poc/dist/poc.js"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------

_setup_main() {
    local -a pkgs=()
    local use_embedded=0 venv_ok=0 major="" existing_major=""

    [[ -n ${PATRIOT_DATABASE_URL:-} ]] || use_embedded=1

    # Serialise concurrent set-ups of the same checkout (e.g. run + test).
    # The lock is released before returning so that servers exec'd by the
    # caller do not inherit it.
    _setup_lock_fd=""
    if command -v flock >/dev/null 2>&1; then
        _setup_mkdir "$_setup_root/.data"
        exec {_setup_lock_fd}>"$_setup_root/.data/setup.lock"
        flock "$_setup_lock_fd"
    fi

    # -- 1. system packages ---------------------------------------------------
    if [[ -x $_setup_venv/bin/python ]] && _setup_python_ok "$_setup_venv/bin/python"; then
        venv_ok=1
    else
        _setup_find_python
        if [[ -z $_setup_python ]]; then
            if [[ -n $_setup_python_novenv ]]; then
                pkgs+=(python3-venv)
            else
                pkgs+=(python3 python3-venv)
            fi
        fi
    fi

    if [[ $use_embedded -eq 1 ]]; then
        _setup_pg_have_server "$(_setup_pg_highest_major)" 2>/dev/null || pkgs+=(postgresql)
    fi
    _setup_apt_install "${pkgs[@]}"
    pkgs=()

    if [[ $venv_ok -eq 0 ]]; then
        _setup_find_python
        if [[ -z $_setup_python ]]; then
            if [[ -n $_setup_python_novenv ]]; then
                _setup_die "$_setup_python_novenv cannot create virtualenvs (ensurepip missing); install these packages: python3-venv (or python3.X-venv matching $_setup_python_novenv)"
            fi
            _setup_die "Python >= 3.11 is required but not found; install these packages: python3.11 python3.11-venv (or newer)"
        fi
    fi

    if [[ $use_embedded -eq 1 ]]; then
        if _setup_is_root; then
            getent passwd postgres >/dev/null \
                || _setup_die "running as root but there is no 'postgres' system user (normally created by the 'postgresql' package); install these packages: postgresql"
            if runuser -u postgres -- true >/dev/null 2>&1; then
                _setup_pg_switch=runuser
            elif su postgres -s /bin/sh -c true >/dev/null 2>&1; then
                _setup_pg_switch=su
            else
                _setup_die "cannot run commands as the 'postgres' user (runuser/su failed)"
            fi
        fi
        _setup_pg_locate

        major="$(_setup_pg_highest_major)"
        if [[ -f $_setup_pg_data/PG_VERSION ]]; then
            existing_major="$(cat "$_setup_pg_data/PG_VERSION")"
            existing_major="${existing_major%%.*}"
            major="$existing_major"
            _setup_pg_have_server "$major" || pkgs+=("postgresql-$major")
        fi
        [[ -n $major ]] || _setup_die "no PostgreSQL server found under /usr/lib/postgresql; install these packages: postgresql"
        if [[ -z $existing_major && $major -lt $_setup_min_pg_major ]]; then
            _setup_die "PostgreSQL >= $_setup_min_pg_major is required but the newest installed is $major; install these packages: postgresql-$_setup_min_pg_major postgresql-$_setup_min_pg_major-postgis-3 (or newer, e.g. from apt.postgresql.org)"
        fi
        _setup_pg_have_postgis "$major" || pkgs+=("postgresql-$major-postgis-3")
        _setup_apt_install "${pkgs[@]}"
        _setup_pg_have_server "$major" \
            || _setup_die "PostgreSQL $major server binaries missing; install these packages: postgresql-$major"
        _setup_pg_have_postgis "$major" \
            || _setup_die "PostGIS for PostgreSQL $major missing; install these packages: postgresql-$major-postgis-3"
    fi

    # -- 2. Python virtualenv -----------------------------------------------
    [[ -f $_setup_root/pyproject.toml ]] || _setup_die "$_setup_root/pyproject.toml not found"
    if [[ $venv_ok -eq 0 ]]; then
        if [[ -e $_setup_venv ]]; then
            _setup_log "recreating broken virtualenv .venv"
            rm -rf "$_setup_venv"
        else
            _setup_log "creating virtualenv .venv with $_setup_python"
        fi
        "$_setup_python" -m venv "$_setup_venv" || {
            rm -rf "$_setup_venv"
            _setup_die "'$_setup_python -m venv' failed; install these packages: python3-venv"
        }
    fi
    _setup_python_deps

    export VIRTUAL_ENV="$_setup_venv"
    export PATH="$_setup_venv/bin:$PATH"
    unset PYTHONHOME
    hash -r

    # -- 3. database ---------------------------------------------------------
    if [[ $use_embedded -eq 1 ]]; then
        _setup_port_python="$_setup_venv/bin/python"
        _setup_pg_embedded "$major"
    fi

    # -- 4. browser for the screen tests (scripts/test sets PATRIOT_SETUP_BROWSER=1) --
    if [[ ${PATRIOT_SETUP_BROWSER:-0} == 1 ]] && ! command -v chromium >/dev/null 2>&1; then
        _setup_apt_install chromium
    fi

    # -- 5. POC screen front end -------------------------------------------------
    _setup_poc_build

    # -- 5b. the GraphQL-over-HTTP audit the tests run (tests/http_audit) ------------
    if [[ ${PATRIOT_SETUP_BROWSER:-0} == 1 ]]; then
        _setup_http_audit
    fi

    # -- 6. shared data --------------------------------------------------------
    if [[ -z ${PATRIOT_SHARED_DATA_DIR:-} && -d $_setup_root/../shared/data/bekasi ]]; then
        PATRIOT_SHARED_DATA_DIR="$(cd "$_setup_root/../shared/data/bekasi" && pwd -P)"
        export PATRIOT_SHARED_DATA_DIR
    fi

    if [[ -n $_setup_lock_fd ]]; then
        exec {_setup_lock_fd}>&-
    fi
}

_setup_main
