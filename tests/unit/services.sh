#!/bin/sh
# services.sh: run a command with a throwaway Redis, PostgreSQL and WeChat
# stand-in of its own, then stop them and remove every trace.
#
#	tests/unit/services.sh COMMAND [ARG ...]
#
# Everything lives in a fresh mktemp directory (so any number of harnesses
# can run at once, as under make -j): Redis and PostgreSQL on unix sockets
# there, no TCP; the stand-in (tests/wechat/standin.py) on a loopback port
# the kernel picks.  COMMAND sees
#
#	WXAPP_TEST_REDIS	the Redis socket
#	WXAPP_TEST_PG		a libpq conninfo (trust auth, user wxapp)
#	WXAPP_TEST_PG_PID	the postmaster's pid
#	WXAPP_TEST_WECHAT_URL	http://127.0.0.1:PORT, and the stand-in's
#	WXAPP_TEST_WECHAT_APPID	credentials
#	WXAPP_TEST_WECHAT_SECRET
#	WXAPP_TEST_TMP		a scratch directory, removed afterwards
#
# and the exit status is COMMAND's.  A service that cannot be started is
# an error (exit 99, a hard error to automake), never a skip.  PostgreSQL
# refuses to run as root: as root, initdb and pg_ctl run as
# $WXAPP_TEST_USER (default nobody) via runuser.
set -u

prog=services.sh
here=$(cd "$(dirname "$0")" && pwd)
standin=${srcdir:+$srcdir/tests/wechat/standin.py}
[ -n "$standin" ] && [ -f "$standin" ] || standin=$here/../wechat/standin.py
tmp=
redis_pid=
wechat_pid=
PGBIN=

die() {
	echo "$prog: $*" >&2
	exit 99
}

[ $# -gt 0 ] || die "usage: $prog COMMAND [ARG ...]"

# The newest installed PostgreSQL (Debian: /usr/lib/postgresql/N/bin).
pg_bindir() {
	d=$(printf '%s\n' /usr/lib/postgresql/*/bin | grep -v '\*' |
	    sort -V | tail -n 1)
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then
		echo "$d"
	elif command -v initdb >/dev/null 2>&1; then
		dirname "$(command -v initdb)"
	fi
}

# Run a PostgreSQL tool, as the unprivileged user when we are root.
as_svc() {
	if [ "$(id -u)" -eq 0 ]; then
		(cd / && runuser -u "$svc_user" -- "$@")
	else
		(cd / && "$@")
	fi
}

# Print the last lines of a log file to stderr, indented.
show() {
	[ -f "$1" ] && tail -n 15 "$1" | sed 's/^/    /' >&2
	return 0
}

# Stop everything we started, whatever state a test left it in (a test may
# have stopped a process with SIGSTOP and died before continuing it).
# shellcheck disable=SC2317 # (run by the EXIT trap)
cleanup() {
	if [ -n "$redis_pid" ]; then
		kill -CONT "$redis_pid" 2>/dev/null
		kill -TERM "$redis_pid" 2>/dev/null
		wait "$redis_pid" 2>/dev/null
	fi
	if [ -n "$wechat_pid" ]; then
		kill -TERM "$wechat_pid" 2>/dev/null
		wait "$wechat_pid" 2>/dev/null
	fi
	if [ -n "$tmp" ] && [ -f "$tmp/pg/postmaster.pid" ]; then
		pm=$(head -n 1 "$tmp/pg/postmaster.pid")
		for p in $pm $(pgrep -P "$pm" 2>/dev/null); do
			kill -CONT "$p" 2>/dev/null
		done
		as_svc "$PGBIN/pg_ctl" -D "$tmp/pg" -m immediate -w -t 20 \
		    stop >/dev/null 2>&1 || kill -KILL "$pm" 2>/dev/null
	fi
	[ -z "$tmp" ] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# -- the directory -------------------------------------------------------
# Under $TMPDIR if set, else on /dev/shm when it is a tmpfs with room to
# spare (initdb takes half the time there), else under /tmp.  Unix socket
# paths must fit in 107 bytes: keep it short.
base=${TMPDIR:-}
if [ -z "$base" ]; then
	base=/tmp
	room=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 { print $4 }')
	[ ! -w /dev/shm ] || [ "${room:-0}" -lt 1048576 ] || base=/dev/shm
fi
tmp=$(mktemp -d "$base/wxsvc.XXXXXX") || die "mktemp in $base failed"
[ ${#tmp} -le 60 ] ||
	die "$tmp: too long a path for unix sockets; set TMPDIR shorter"
svc_user=${WXAPP_TEST_USER:-nobody}
if [ "$(id -u)" -eq 0 ]; then
	id -u "$svc_user" >/dev/null 2>&1 || die "running as root, and" \
	    "user $svc_user (to run PostgreSQL) does not exist; set WXAPP_TEST_USER"
	[ "$(id -u "$svc_user")" -ne 0 ] ||
		die "WXAPP_TEST_USER must not be root"
	chown "$svc_user" "$tmp" || die "cannot chown $tmp to $svc_user"
	runuser -u "$svc_user" -- test -w "$tmp" 2>/dev/null ||
		die "$svc_user cannot write to $tmp (is $base reachable by it?)"
fi
mkdir "$tmp/scratch" || die "cannot create $tmp/scratch"

# -- PostgreSQL: initdb and start, in the background while the others start
PGBIN=$(pg_bindir)
[ -n "$PGBIN" ] ||
	die "PostgreSQL is not installed (apt-get install postgresql)"
(
	as_svc "$PGBIN/initdb" -D "$tmp/pg" -U wxapp -A trust -E UTF8 \
	    --locale=C.UTF-8 --no-sync --no-instructions \
	    >"$tmp/initdb.log" 2>&1 || exit 1
	cat >>"$tmp/pg/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$tmp'
max_connections = 30
shared_buffers = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_error_verbosity = terse
EOF
	as_svc "$PGBIN/pg_ctl" -D "$tmp/pg" -l "$tmp/pg/postgres.log" -W \
	    start >/dev/null 2>&1 || exit 2
) &
pg_boot=$!

# -- Redis ------------------------------------------------------------------
command -v redis-server >/dev/null 2>&1 ||
	die "redis-server is not installed (apt-get install redis-server)"
command -v redis-cli >/dev/null 2>&1 ||
	die "redis-cli is not installed (apt-get install redis-tools)"
redis-server --port 0 --unixsocket "$tmp/redis.sock" --unixsocketperm 700 \
    --save "" --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" \
    </dev/null >/dev/null 2>"$tmp/redis.err" &
redis_pid=$!

# -- the WeChat stand-in: port 0, the port read from its first line --------
[ -f "$standin" ] || die "$standin not found"
command -v python3 >/dev/null 2>&1 || die "python3 is not installed"
export WXAPP_TEST_WECHAT_APPID=wxunittest0000001
export WXAPP_TEST_WECHAT_SECRET=unittestsecret00000000000000000a
python3 "$standin" --listen 127.0.0.1:0 --appid "$WXAPP_TEST_WECHAT_APPID" \
    --secret "$WXAPP_TEST_WECHAT_SECRET" </dev/null >/dev/null \
    2>"$tmp/wechat.log" &
wechat_pid=$!

# -- wait for all three (at most 30 s) ---------------------------------------
wait "$pg_boot"
case $? in
0)	;;
1)	show "$tmp/initdb.log"; die "initdb failed" ;;
*)	show "$tmp/pg/postgres.log"; die "pg_ctl start failed" ;;
esac
tries=0
redis_up=no pg_up=no port=
while [ $tries -lt 300 ]; do
	kill -0 "$redis_pid" 2>/dev/null || { show "$tmp/redis.err"
		show "$tmp/redis.log"; die "redis-server exited"; }
	kill -0 "$wechat_pid" 2>/dev/null ||
		{ show "$tmp/wechat.log"; die "the WeChat stand-in exited"; }
	[ $redis_up = yes ] ||
	    [ "$(redis-cli -s "$tmp/redis.sock" ping 2>/dev/null)" != PONG ] ||
	    redis_up=yes
	[ $pg_up = yes ] ||
	    ! as_svc "$PGBIN/pg_isready" -q -h "$tmp" -U wxapp -d postgres ||
	    pg_up=yes
	[ -n "$port" ] || port=$(sed -n \
	    's|^standin: listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' \
	    "$tmp/wechat.log")
	[ $redis_up = no ] || [ $pg_up = no ] || [ -z "$port" ] || break
	tries=$((tries + 1))
	sleep 0.1
done
[ $redis_up = yes ] ||
	{ show "$tmp/redis.log"; die "redis does not answer on $tmp/redis.sock"; }
[ $pg_up = yes ] ||
	{ show "$tmp/pg/postgres.log"; die "postgres does not answer"; }
[ -n "$port" ] ||
	{ show "$tmp/wechat.log"; die "the WeChat stand-in did not start"; }

export WXAPP_TEST_REDIS="$tmp/redis.sock"
export WXAPP_TEST_PG="host=$tmp user=wxapp dbname=postgres"
WXAPP_TEST_PG_PID=$(head -n 1 "$tmp/pg/postmaster.pid")
export WXAPP_TEST_PG_PID
export WXAPP_TEST_WECHAT_URL="http://127.0.0.1:$port"
export WXAPP_TEST_TMP="$tmp/scratch"
"$@"
rc=$?
[ $rc -eq 0 ] || echo "$prog: $* exited with status $rc" >&2
exit $rc
