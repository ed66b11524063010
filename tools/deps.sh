#!/bin/sh
# tools/deps.sh - make sure the Debian packages Tazamun needs are installed.
#
# Silent and exit 0 when everything is there.  Otherwise, as root: installs
# what is missing (one line on stderr); as anyone else: prints the apt-get
# line to run and exits 1.  Called by `make deps`, hence `make test`/`demo`.
set -eu

# Libraries (headers and .pc files; libdeflate compresses the packs' zlib
# streams, zlib the few objects too big for one buffer, libssl-dev gives
# libcrypto's SHA-1 of the packs), then the
# programs the tests run:
# sqlite3 (the shell), git + ssh-keygen (`git verify-commit` on SSH-signed
# commits), zstd, procps (ps, pgrep: the tests watch the daemons) and curl
# (the HTTP tests read GET /metrics and send hand-made requests).
PKGS="pkg-config libsqlite3-dev libgit2-dev libzstd-dev libsodium-dev libdeflate-dev zlib1g-dev libssl-dev"
# libmicrohttpd and libcurl: syncd's HTTP server and client.
PKGS="$PKGS libmicrohttpd-dev libcurl4-openssl-dev"
PKGS="$PKGS sqlite3 git openssh-client zstd procps curl"

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "tools/deps.sh: not a Debian system; make sure these are installed:" \
		"a C compiler, make, $PKGS" >&2
	exit 0
fi

installed() {
	case $(dpkg-query -W -f='${Status} ' "$1" 2>/dev/null) in
	*"ok installed"*) return 0 ;;
	*) return 1 ;;
	esac
}

missing=
# build-essential is the usual way to get a compiler; gcc + make + libc6-dev
# is enough.
if ! installed build-essential; then
	for p in gcc make libc6-dev; do
		installed "$p" || missing="$missing $p"
	done
fi
for p in $PKGS; do
	installed "$p" || missing="$missing $p"
done
missing=${missing# }

[ -z "$missing" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
	echo "tools/deps.sh: installing $missing" >&2
	apt-get update -qq
	# shellcheck disable=SC2086 # $missing is a list of package names
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends $missing >/dev/null
	exit 0
fi

echo "tools/deps.sh: missing packages; run: sudo apt-get install -y $missing" >&2
exit 1
