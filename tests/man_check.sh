#!/bin/sh
# make check: every man page lints clean (mandoc -Tlint), wxapp.conf(5)
# documents every configuration key the code knows (wxappctl config
# --keys), and wxappctl(8) has a section for every subcommand.
set -u
srcdir=${srcdir:-.}
ctl=./app/wxappctl
fail=0

if ! command -v mandoc >/dev/null 2>&1; then
	echo "mandoc is not installed (apt-get install mandoc): skipped"
	exit 77
fi
# The pages as built (from man/*.in, with this installation's paths), and
# wxapp-stack(1), which is not built.
for page in man/wxapp.conf.5 man/wxapp-fcgi.8 man/wxapp-pool.8 man/wxappctl.8 man/wxapp-worker.8 \
    man/wxapp-otlp.8 \
    "$srcdir"/man/wxapp-stack.1; do
	[ -f "$page" ] || { echo "$page is missing"; fail=1; continue; }
	if grep -n '@[a-z_]*@' "$page"; then
		echo "$page: a directory was not substituted"
		fail=1
	fi
	out=$(mandoc -Tlint -Wwarning "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "$out"
		fail=1
	fi
done

keys=$("$ctl" -c /dev/null config --keys) || { echo "wxappctl config --keys failed"; exit 1; }
for k in $keys; do
	if ! grep -q "^\.It Ic $k\( \|$\)" man/wxapp.conf.5; then
		echo "wxapp.conf.5 does not document the key $k"
		fail=1
	fi
done

subs=$("$ctl" -h | awk '/^  [a-z]/ { print $1 }')
[ -n "$subs" ] || { echo "wxappctl -h lists no subcommands"; exit 1; }
for s in $subs; do
	if ! grep -q "^\.Ss $s$" man/wxappctl.8; then
		echo "wxappctl.8 has no section for the subcommand $s"
		fail=1
	fi
done
[ "$fail" -eq 0 ] && echo "man pages: lint clean, $(echo "$keys" | wc -l) keys and $(echo "$subs" | wc -l) subcommands documented"
exit "$fail"
