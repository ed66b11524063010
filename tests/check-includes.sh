#!/bin/sh
# tests/check-includes.sh [--root DIR] - the layering rules of STYLE.md, as TAP.
#
# Layers, top to bottom: tools/ -> syncd/ -> conflict/ -> store/.  For every
# .c and .h file in those four directories:
#   - an include of another layer's header points down, never up (nothing
#     includes tools/ but tools/);
#   - a project header is included by its path from the repository root
#     ("store/tz_buf.h"), never bare or with "..";
#   - a header named *_int.h is included only from its own directory;
#   - store/, conflict/ and syncd/ neither end the process (exit, _exit,
#     _Exit, quick_exit) nor print (printf, puts, putchar, perror, dprintf,
#     stdout/stderr, write to fd 1 or 2): only tools/ does.  Comments and
#     string literals are ignored; snprintf and vsnprintf are fine.
# One TAP line per file.  Without --root the script checks this repository,
# then proves on scratch trees that it flags each kind of violation.
set -u

root=
while [ $# -gt 0 ]; do
	case $1 in
	--root) [ $# -ge 2 ] || { echo "--root needs a directory" >&2; exit 2; }
		root=$2; shift 2 ;;
	*) echo "usage: sh tests/check-includes.sh [--root DIR]" >&2; exit 2 ;;
	esac
done
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
selftest=0
if [ -z "$root" ]; then
	root=$(dirname "$self")/..
	selftest=1
fi
cd "$root" || exit 2

n=0 bad=0

# Prints "LINE: problem" for each violation in file $1 (a path relative to
# the root, e.g. "store/buf.c").
problems() {
	awk -v file="$1" '
	function rank(d) {
		return d == "store" ? 0 : d == "conflict" ? 1 : \
		       d == "syncd" ? 2 : d == "tools" ? 3 : -1
	}
	function dirof(p) { sub(/\/[^\/]*$/, "", p); return p }
	BEGIN {
		mydir = dirof(file)
		layer = mydir; sub(/\/.*/, "", layer)
		me = rank(layer)
	}
	/^[ \t]*#[ \t]*include[ \t]*["<]/ {
		s = $0
		sub(/^[ \t]*#[ \t]*include[ \t]*/, "", s)
		quoted = substr(s, 1, 1) == "\""
		path = substr(s, 2); sub(/[">].*/, "", path)
		top = path; sub(/\/.*/, "", top)
		if (index(path, "/") == 0) top = ""
		r = rank(top)
		if (quoted && r < 0)
			print FNR ": \"" path "\" is not a path from the repository root (store/..., conflict/..., syncd/..., tools/...)"
		if (r > me)
			print FNR ": upward include \"" path "\": " layer "/ may not include " top "/"
		if (r >= 0 && path ~ /_int\.h$/ && dirof(path) != mydir)
			print FNR ": \"" path "\" is internal to " dirof(path) "/"
	}
	me < 0 || me > 2 { next }
	{
		# Blank out comments and string and character literals.
		raw = $0; code = ""; i = 1; n = length(raw)
		while (i <= n) {
			c = substr(raw, i, 1); c2 = substr(raw, i, 2)
			if (incomment) {
				if (c2 == "*/") { incomment = 0; i += 2 } else i++
				code = code " "
			} else if (c2 == "/*") {
				incomment = 1; i += 2; code = code " "
			} else if (c2 == "//") {
				break
			} else if (c == "\"" || c == "\047") {
				for (i++; i <= n && substr(raw, i, 1) != c; i++)
					if (substr(raw, i, 1) == "\\") i++
				i++; code = code c c
			} else {
				code = code c; i++
			}
		}
		pre = "(^|[^A-Za-z0-9_.>])"
		if (code ~ (pre "(exit|_exit|_Exit|quick_exit)[ \t]*\\("))
			print FNR ": ends the process: only tools/ calls exit()"
		if (code ~ (pre "(printf|vprintf|puts|putchar|perror|dprintf|vdprintf)[ \t]*\\(") ||
		    code ~ ("(^|[^A-Za-z0-9_])(stdout|stderr)([^A-Za-z0-9_]|$)") ||
		    code ~ (pre "write[ \t]*\\([ \t]*(1|2|STDOUT_FILENO|STDERR_FILENO)[ \t]*,"))
			print FNR ": prints to the terminal: only tools/ prints (report with tz_error_set)"
	}' "$1"
}

files=$(for d in store conflict syncd tools; do
	[ -d "$d" ] && find "$d" -type f \( -name '*.c' -o -name '*.h' \)
done | LC_ALL=C sort)

for f in $files; do
	n=$((n + 1))
	out=$(problems "$f")
	if [ -z "$out" ]; then
		echo "ok $n - $f"
	else
		bad=$((bad + 1))
		echo "not ok $n - $f:$(echo "$out" | head -n 1)"
		echo "$out" | sed "s|^|# $f:|"
	fi
done

# expect NAME STATUS [FILE CONTENT]...: build a scratch tree, check it with
# --root, and expect STATUS (0 = clean, 1 = flagged; flagged output must
# name the first file at line 2, where every bad line is put).
expect() {
	name=$1 want=$2
	shift 2
	t=$scratch/$n
	first=$1
	while [ $# -ge 2 ]; do
		mkdir -p "$t/$(dirname "$1")"
		printf '%s\n' "$2" >"$t/$1"
		shift 2
	done
	n=$((n + 1))
	got=0
	sh "$self" --root "$t" >"$t.out" 2>&1 || got=1
	if [ "$got" = "$want" ] &&
	   { [ "$want" = 0 ] || grep -q "^not ok .* - $first:2: " "$t.out"; }; then
		echo "ok $n - self-test: $name"
	else
		bad=$((bad + 1))
		echo "not ok $n - self-test: $name"
		sed 's/^/# /' "$t.out"
	fi
}

if [ "$selftest" = 1 ]; then
	scratch=$(mktemp -d) || exit 2
	trap 'rm -rf "$scratch"' EXIT
	trap 'exit 130' INT TERM HUP
	expect "an upward include is flagged" 1 \
		store/row.c '#include "store/tz_row.h"
#include "syncd/tz_bundle.h"'
	expect "an include of tools/ is flagged" 1 \
		syncd/http.c '/* http */
#  include "tools/cli.h"'
	expect "a bare project include is flagged" 1 \
		conflict/merge.c '#include "conflict/tz_merge.h"
#include "tz_merge.h"'
	expect "another directory's _int.h is flagged" 1 \
		conflict/merge.c '#include "conflict/merge_int.h"
#include "store/store_int.h"'
	expect "exit() in a library is flagged" 1 \
		store/base.c '/* base */
	if (!p) exit(1);'
	expect "printing to stderr in a library is flagged" 1 \
		syncd/http.c '/* http */
	fprintf(stderr, "bad request\n");'
	expect "printf() in a library is flagged" 1 \
		conflict/queue.c '/* queue */
		printf("%d\n", n);'
	expect "a clean tree passes" 0 \
		store/base.c '#include "store/tz_base.h"
#include "store/store_int.h"
#include <stdio.h>
/* never printf() or fprintf(stderr, ...) here */
int f(char *b, size_t n) { return snprintf(b, n, "exit(1) to stderr"); }
int g(char *b, size_t n, va_list ap) { return vsnprintf(b, n, "%s", ap); }
// puts("x");
int h(tz_ctx *c) { atexit(cb); c->exit(c); return c->printf; }' \
		tools/syncctl.c '#include "syncd/tz_sync.h"
#include "store/tz_base.h"
#include "tools/cli.h"
int main(void) { fprintf(stderr, "x\n"); exit(2); }' \
		syncd/sync.c '#include "conflict/tz_merge.h"
#include "store/tz_buf.h"
/* a comment
   that says exit(1) and printf("x")
   across lines */'
fi

echo "1..$n"
[ "$bad" -eq 0 ]
