#!/bin/sh
# bench/deps.sh - what `make bench` needs beyond `make deps`: npm, to fetch
# sqlite-sync's extension (bench/fetch-sqlite-sync.sh).  Never fails: without
# npm the sqlite-sync contender is reported "not available" in the table.
# As root on Debian, installs npm when missing (one line on stderr).
command -v npm >/dev/null 2>&1 && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "bench/deps.sh: installing npm (for sqlite-sync's extension)" >&2
	{ apt-get update -qq &&
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends npm; } >/dev/null 2>&1 ||
		echo "bench/deps.sh: could not install npm: sqlite-sync will be" \
			"reported not available" >&2
	exit 0
fi
echo "bench/deps.sh: no npm (sudo apt-get install -y npm): sqlite-sync will" \
	"be reported not available" >&2
exit 0
