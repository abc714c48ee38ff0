#!/bin/sh
# make check: the layers show in the includes alone.
#  - lib/ includes nothing of app/, and names nothing app-shaped: the
#    program's context, configuration, statements, routes, collections;
#  - lib/ defines no idea of the program's: an envelope code that lib/
#    never answers with is the program's, unless it is a plain status;
#  - lib/ names no file of app/ and no program, not even in a comment;
#  - no two lib modules include each other, directly or through others.
set -u
srcdir=${srcdir:-.}
lib=$srcdir/lib
app=$srcdir/app
fail=0

# The headers of app/, by name.
app_headers=$(cd "$app" && ls *.h)
for f in "$lib"/*.c "$lib"/*.h; do
	for h in $app_headers; do
		if grep -q "^#include \"$h\"" "$f" && [ ! -f "$lib/$h" ]; then
			echo "${f#$srcdir/}: includes app/$h"
			fail=1
		fi
	done
done

# What only the program may name: the structs, macros and enum
# constants that app/'s headers define, and its collections.
names=$(cat "$app"/*.h | sed -n \
    -e 's/^struct \([a-z_][a-z0-9_]*\) {.*/struct \1/p' \
    -e 's/^#define[ \t]\{1,\}\([A-Z][A-Z0-9_]*\).*/\1/p' \
    -e 's/^[ \t]\{1,\}\([A-Z][A-Z0-9_]*\)[ \t]*\(=[^,]*\)\{0,1\},\{0,1\}[ \t]*\(\/\*.*\)\{0,1\}$/\1/p' |
    grep -v '^WX_' | sort -u)
[ -n "$names" ] || { echo "layering: found no names in app/*.h"; exit 1; }
echo "$names" > layering-names.tmp
echo '"users"' >> layering-names.tmp
echo '"items"' >> layering-names.tmp
if grep -nwF -f layering-names.tmp "$lib"/*.c "$lib"/*.h; then
	echo "lib/ names something of the program (above)"
	fail=1
fi
rm -f layering-names.tmp

# The envelope codes lib/ defines: each one that lib/*.c answers with,
# and the plain statuses (status * 100) that every program answers with
# and lib/ offers for them.  Any other is the program's own, and goes
# beside its other codes in app/.
plain="API_UNAUTHORIZED API_FORBIDDEN API_CONFLICT API_RATE_LIMITED"
plain="$plain API_INTERNAL API_UNAVAILABLE"
codes=$(sed -n 's/^[ \t]\{1,\}\(API_[A-Z0-9_]*\)[ \t]*=.*/\1/p' "$lib"/*.h)
[ -n "$codes" ] || { echo "layering: found no API_ codes in lib/*.h"; exit 1; }
for c in $codes; do
	case " $plain " in
	*" $c "*)	continue ;;
	esac
	if ! grep -qw "$c" "$lib"/*.c; then
		echo "lib/ defines $c and never answers with it: the program's"
		fail=1
	fi
done

# Names of app/: its path, its files (but those that lib/ has too),
# its programs, and the programs and files of the man pages.
{
	(cd "$app" && ls *.c *.h) | while read -r f; do
		[ -f "$lib/$f" ] || echo "$f"
	done
	grep -l '^main(' "$app"/*.c | sed 's,.*/,,; s,\.c$,,'
	[ ! -d "$srcdir/man" ] ||
	    (cd "$srcdir/man" && ls) | sed 's/\.[0-9]\(\.in\)\{0,1\}$//'
} | sort -u > layering-files.tmp
if grep -nwF -f layering-files.tmp "$lib"/*.c "$lib"/*.h ||
    grep -nE '(^|[^A-Za-z0-9_./-])app/' "$lib"/*.c "$lib"/*.h; then
	echo "lib/ names a file of app/ or a program (above)"
	fail=1
fi
rm -f layering-files.tmp

# Module -> modules it includes (x.c and x.h of module x), then cycles.
edges=$(for f in "$lib"/*.c "$lib"/*.h; do
	m=$(basename "$f"); m=${m%.*}
	sed -n 's/^#include "\([a-z0-9_]*\)\.h"/\1/p' "$f" |
	    while read -r to; do
		[ "$to" = "$m" ] || [ ! -f "$lib/$to.h" ] || echo "$m $to"
	    done
done | sort -u)
cycle=$(echo "$edges" | awk '
	NF == 2 { out[$1] = out[$1] " " $2; nodes[$1]; nodes[$2] }
	function visit(n,    i, k, next_) {
		state[n] = 1; path[++depth] = n
		k = split(out[n], next_, " ")
		for (i = 1; i <= k; i++) {
			if (state[next_[i]] == 1) {
				s = ""
				for (j = 1; j <= depth; j++)
					if (path[j] == next_[i] || s != "")
						s = s path[j] " -> "
				print s next_[i]; found = 1; exit
			}
			if (state[next_[i]] == 0)
				visit(next_[i])
		}
		state[n] = 2; depth--
	}
	END { for (n in nodes) if (state[n] == 0 && !found) visit(n) }')
if [ -n "$cycle" ]; then
	echo "lib/ modules include each other: $cycle"
	fail=1
fi
[ $fail -eq 0 ] && echo "layering: lib/ stands on its own, no include cycles"
exit $fail
