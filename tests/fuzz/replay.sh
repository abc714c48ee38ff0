#!/bin/sh
# make check: every fuzz target replays its corpus and every input that
# once crashed it (tests/fuzz/corpus/NAME, tests/fuzz/crashes/NAME).  Built
# with libFuzzer (--enable-fuzzing), -runs=0 runs the inputs without
# fuzzing; the plain driver ignores it.
set -u
srcdir=${srcdir:-.}
fail=0
for t in request json token wxdata config push fcgiconn; do
	bin=./tests/fuzz/fuzz_$t
	if ! "$bin" -runs=0 "$srcdir/tests/fuzz/corpus/$t" \
	    "$srcdir/tests/fuzz/crashes/$t" >"fuzz-replay-$t.log" 2>&1; then
		echo "fuzz_$t failed on its corpus:"
		tail -n 30 "fuzz-replay-$t.log"
		fail=1
	fi
done
rm -f fuzz-replay-*.log
exit "$fail"
