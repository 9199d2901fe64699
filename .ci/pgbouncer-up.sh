#!/usr/bin/env bash
# Starts a PgBouncer for aludel's pooler tests: transaction pooling, one server connection
# (so which backend runs a statement is deterministic), trust auth, loopback only, in front
# of the PostgreSQL at 127.0.0.1:5432. Idempotent: exits 0 at once when the port answers.
#   usage: .ci/pgbouncer-up.sh [port]   (default 6439)
# Installs the Debian package when the binary is missing (needs root). Runs as the postgres
# OS user when started as root (PgBouncer refuses to run as root).
set -euo pipefail
port="${1:-6439}"
dir="/tmp/aludel-pgbouncer-$port"
pg_host=127.0.0.1 pg_port=5432

open() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
if open; then exit 0; fi

bin="$(command -v pgbouncer || true)"
[ -z "$bin" ] && [ -x /usr/sbin/pgbouncer ] && bin=/usr/sbin/pgbouncer
if [ -z "$bin" ]; then
  [ "$(id -u)" = 0 ] || { echo "pgbouncer is missing: apt-get install pgbouncer" >&2; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null; }
  bin=/usr/sbin/pgbouncer
  # The package may start its own instance on 6432; it is not ours and does not matter here.
fi

run=()
if [ "$(id -u)" = 0 ]; then run=(runuser -u postgres --); fi
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=$pg_host port=$pg_port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 200
ignore_startup_parameters = extra_float_digits,options
INI
printf '"postgres" ""\n' >"$dir/userlist.txt"
[ "$(id -u)" = 0 ] && chown postgres "$dir"/*
"${run[@]}" "$bin" -d -q "$dir/pgbouncer.ini"
for _ in $(seq 1 100); do open && exit 0; sleep 0.1; done
echo "pgbouncer did not start on $port; see $dir/pgbouncer.log" >&2
exit 1
