#!/bin/sh
# bench/fetch-sqlite-sync.sh CACHE - make sqlite-sync's SQLite extension
# available for bench/sqlite_sync: `npm pack` of the npm package
# @sqliteai/sqlite-sync-linux-x86_64 into CACHE (under build/, never
# committed), its cloudsync.so extracted there.  Prints the path of the .so
# and exits 0; or prints why it is not available and exits 1.  A .so
# already in CACHE is reused (delete CACHE to fetch again).
set -u
PKG=@sqliteai/sqlite-sync-linux-x86_64
cache=${1:?usage: sh bench/fetch-sqlite-sync.sh CACHE}

if [ -f "$cache/cloudsync.so" ]; then
	echo "$cache/cloudsync.so"
	exit 0
fi
if [ "$(uname -s)-$(uname -m)" != Linux-x86_64 ]; then
	echo "the npm package is built for Linux x86_64, this is $(uname -s) $(uname -m)"
	exit 1
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "npm is not installed (bench/deps.sh installs it as root)"
	exit 1
fi
mkdir -p "$cache" || { echo "cannot create $cache"; exit 1; }
rm -f "$cache"/*.tgz
# bounded: a registry that does not answer must not hang the benchmark
if ! (cd "$cache" && timeout 180 npm pack --loglevel=error "$PKG" >pack.out 2>pack.err); then
	# the line that names the cause (a network error, a 404), else the code
	why=$(grep -m 1 -E 'FetchError|404|ENOTFOUND|EAI_AGAIN' "$cache/pack.err" ||
		grep -m 1 -E 'npm (error|ERR!) code' "$cache/pack.err" ||
		grep -v '^$' "$cache/pack.err" | tail -n 1)
	echo "npm pack $PKG failed: $(echo "$why" | cut -c 1-300)"
	exit 1
fi
tgz=$(ls "$cache"/*.tgz 2>/dev/null | head -n 1)
if [ -z "$tgz" ] || ! tar -xzf "$tgz" -C "$cache" package/cloudsync.so 2>/dev/null; then
	echo "npm pack $PKG gave no package/cloudsync.so"
	exit 1
fi
mv "$cache/package/cloudsync.so" "$cache/cloudsync.so" && rmdir "$cache/package"
echo "$cache/cloudsync.so"
