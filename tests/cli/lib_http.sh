# lib_http.sh - helpers of the HTTP transport tests (t11, t12), sourced
# after lib.sh: an HQ store with branches enrolled, `syncd --hq` started
# on a free loopback port (port 0: the kernel picks it, so parallel runs
# never collide) and stopped by its pid, metrics read back.
SYNCD="$TZ_BUILD/syncd"
PROBE="$TZ_BUILD/tests/http_probe"
export TZ_PASSPHRASE="http test passphrase"
# the daemons a test started (by pid) never outlive it, whatever happens
HQ_PID= PX= BP=
trap 'for p in $HQ_PID $PX $BP; do kill -9 "$p" 2>/dev/null; done; rm -rf "$WORK"' EXIT

# http_setup: HQ in $WORK/hq with a schema (job_seeker owned, workshop
# shared, region hq) and a committed base.
http_setup() {
	cat >"$WORK/schema.sql" <<'SQL'
CREATE TABLE region(code TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE job_seeker(id TEXT PRIMARY KEY, name TEXT, notes TEXT, owner_branch TEXT NOT NULL);
CREATE TABLE workshop(id TEXT PRIMARY KEY, title TEXT, seats INTEGER);
INSERT INTO tz_track VALUES ('region', 'hq', NULL), ('job_seeker', 'owned', 'owner_branch'),
    ('workshop', 'shared', NULL);
SQL
	"$SYNCCTL" init-hq "$WORK/hq" >/dev/null &&
		"$SYNCCTL" -C "$WORK/hq" schema apply "$WORK/schema.sql" >/dev/null &&
		sqlite3 "$WORK/hq/store.db" "INSERT INTO region VALUES ('CS', 'Casablanca-Settat');" &&
		"$SYNCCTL" -C "$WORK/hq" commit -m base >/dev/null
}

# http_enrol CODE...: enrol each branch into $WORK/<code in lower case>
# (HQ's side one by one, the branches' side two at a time).
http_enrol() {
	local c n=0
	for c in "$@"; do
		"$SYNCCTL" -C "$WORK/hq" branch add "$c" --out "$WORK/$c.tze" >/dev/null || return 1
	done
	for c in "$@"; do
		"$SYNCCTL" init-branch "$WORK/${c,,}" --enroll "$WORK/$c.tze" >/dev/null &
		n=$((n + 1))
		[ $((n % 2)) -eq 0 ] && { wait || return 1; }
	done
	wait
}

# hq_start [PORT]: start syncd --hq (on PORT, default any free port),
# logging to $WORK/hq.log; sets HQ_PID and URL.  Waits (at most 10 s) for
# the port file.
hq_start() {
	local i
	rm -f "$WORK/hq.port"
	"$SYNCD" --hq "$WORK/hq" --listen "127.0.0.1:${1:-0}" --port-file "$WORK/hq.port" 2>>"$WORK/hq.log" &
	HQ_PID=$!
	for i in $(seq 1 200); do
		[ -s "$WORK/hq.port" ] && break
		sleep 0.05
	done
	URL="http://127.0.0.1:$(cat "$WORK/hq.port" 2>/dev/null)"
	[ -s "$WORK/hq.port" ]
}

# hq_stop [SIGNAL]: signal syncd --hq (TERM by default) and wait; returns
# its exit status.
hq_stop() {
	kill -"${1:-TERM}" "$HQ_PID" 2>/dev/null
	wait "$HQ_PID" 2>/dev/null
}

# metric NAME_WITH_LABELS: the value of one series at $URL/metrics.
metric() {
	curl -s --max-time 10 "$URL/metrics" | awk -v k="$1" '$1 == k { print $2 }'
}

# jget FILE PATH: a value of the JSON document in FILE (sqlite's json).
jget() {
	sqlite3 :memory: "SELECT json_extract(CAST(readfile('$1') AS TEXT), '$2')"
}
