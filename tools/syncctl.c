/*
 * syncctl - the command line of a Tazamun store (docs/cli.md).
 *
 *   syncctl [-C DIR] [--json] COMMAND [ARGS]
 *
 * Human text by default, one JSON document with --json; exit 0 on
 * success, 2 on a usage error, 1 on failure with one line on stderr
 * (3 when verify finds problems).
 */
#include "tools/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TZ_VERSION "0.1.0"

static const cli_command commands[] = {
	{ "init-hq", cmd_init_hq, "init-hq DIR", "create a headquarters store in DIR",
	  "Creates DIR (which must not exist or be empty) with store.db, history/, keys/ and\n"
	  "config for the replica 'HQ', and a fresh Ed25519 key pair.\n\n"
	  "Example:\n  syncctl init-hq /srv/tazamun/hq\n" },
	{ "schema", cmd_schema, "schema apply FILE.sql", "create or migrate tracked tables; commits",
	  "Runs FILE.sql (DDL, and inserts into tz_track(tbl, scope, owner_column)) and the\n"
	  "store's checks in one transaction, installs the change-capture triggers, then\n"
	  "commits. scope is 'owned' (rows partitioned by owner_column), 'shared' or 'hq'.\n"
	  "A refused declaration leaves the store exactly as it was.\n\n"
	  "Example:\n  syncctl -C hq schema apply agency.sql\n" },
	{ "commit", cmd_commit, "commit [-m MSG]", "seal the change log into a signed commit",
	  "Reads the rows the change log names, writes their blobs and the touched trees in\n"
	  "one pack, and records a commit signed with the replica key (SSH signature format,\n"
	  "namespace git). With nothing to commit it says so and exits 0.\n\n"
	  "Example:\n  syncctl -C hq commit -m 'morning registrations'\n" },
	{ "status", cmd_status, "status [--json]", "head, uncommitted changes, unsent commits, last sync",
	  "Example:\n  syncctl -C hq status --json\n" },
	{ "log", cmd_log, "log [--json] [-n N] [REV]", "history, newest first (first parents)",
	  "Each commit with its author, date, signature check and message.\n\n"
	  "Example:\n  syncctl -C hq log -n 5\n" },
	{ "diff", cmd_diff, "diff [--json] [A [B]]", "rows and columns that differ",
	  "No argument: the head against the working state (store.db with its uncommitted\n"
	  "changes). One: A against the working state. Two: A against B. Each changed row\n"
	  "is shown with the columns that differ, in the history's value form\n"
	  "('t' text, 'i' integer, 'r' real, 'b' base64 blob, 'n' null).\n\n"
	  "Example:\n  syncctl -C hq diff HEAD~1 HEAD\n" },
	{ "show", cmd_show, "show [--json] [REV]", "a commit and the rows it changed",
	  "REV defaults to the head.\n\n"
	  "Example:\n  syncctl -C hq show HEAD~1\n" },
	{ "verify", cmd_verify, "verify [--json]", "check signatures, objects and store.db",
	  "Checks every commit's signature, every object's hash and encoding, the tree\n"
	  "layout, and that store.db equals the head plus the change log; a row changed\n"
	  "behind the triggers' back is named by table and key. Exits 3 when it finds\n"
	  "problems.\n\n"
	  "Example:\n  syncctl -C hq verify\n" },
	{ "gc", cmd_gc, "gc [--json]", "put every object of the history in one pack",
	  "Every commit adds a pack to the history and every import several; each one\n"
	  "more is one more index to search for an id. gc copies every object (reachable\n"
	  "or not: nothing is judged garbage) into one new pack, then removes the packs and\n"
	  "loose objects it copied. Takes store.lock like the writers; a failure or a\n"
	  "crash leaves every object readable. syncd runs it when packs pile up.\n\n"
	  "Example:\n  syncctl -C hq gc\n" },
	{ "checkout", cmd_checkout, "checkout REV", "bring store.db to a commit and make it the head",
	  "Rewrites only the rows that differ, adds no change-log entries, and moves the\n"
	  "head (the old head stays in the reflog). Refused while there are uncommitted\n"
	  "changes or when REV has another schema.\n\n"
	  "Example:\n  syncctl -C hq checkout HEAD~1\n" },
	{ "branch", cmd_branch, "branch add CODE --out FILE [--passphrase-file F]", "HQ: enrol a branch",
	  "Registers branch CODE, commits the snapshot of its view (its own partitions of\n"
	  "owned tables, every shared and hq table, the schema) on branches/CODE, and\n"
	  "writes FILE: HQ's public key, a one-time secret and the snapshot, encrypted with\n"
	  "a key derived from the passphrase (Argon2id). The passphrase is the first line of\n"
	  "F, or the environment variable TZ_PASSPHRASE. FILE is never overwritten.\n\n"
	  "Example:\n  TZ_PASSPHRASE=... syncctl -C hq branch add CAS01 --out /media/usb/CAS01.tze\n" },
	{ "init-branch", cmd_init_branch, "init-branch DIR --enroll FILE [--passphrase-file F]",
	  "create a branch store from an enrolment file",
	  "Creates DIR (which must not exist or be empty) from FILE: the branch's tables and\n"
	  "rows, its history (one pack), HQ's key, and the branch's own new key pair (made\n"
	  "here: HQ never holds it). The first export binds that key to the branch code.\n\n"
	  "Example:\n  syncctl init-branch /srv/tazamun/cas01 --enroll /media/usb/CAS01.tze \\\n"
	  "      --passphrase-file /root/cas01.pass\n" },
	{ "export", cmd_export, "export --out FILE [--for CODE]", "write the next bundle",
	  "At a branch: commits pending changes, then writes the commits HQ has not\n"
	  "acknowledged, as row deltas, signed by this replica and encrypted to HQ.\n"
	  "At HQ (--for CODE): the commits of branches/CODE the branch has not been seen\n"
	  "to hold: HQ's acknowledgement and the news of other branches and of HQ.\n"
	  "Every export takes a new sequence number.\n\n"
	  "Example:\n  syncctl -C cas01 export --out /media/usb/cas01-to-hq.tzb\n" },
	{ "import", cmd_import, "import [--json] FILE", "verify and apply a bundle",
	  "Checks the signature, the recipient, the sequence and the store instance, rebuilds\n"
	  "every commit and checks its ids, then at HQ merges the branch's changes into main\n"
	  "(changes outside what the branch may write are listed, not applied) and commits\n"
	  "the branch's new view; at a branch fast-forwards (or merges its newer local\n"
	  "commits on top) and writes store.db. Uncommitted rows in store.db are kept. A\n"
	  "bundle already imported is a no-op (exit 0).\n\n"
	  "Example:\n  syncctl -C hq import --json /media/usb/cas01-to-hq.tzb\n" },
	{ "sync", cmd_netsync, "sync [--json] [URL]", "one sync cycle with syncd --hq over HTTP",
	  "A branch's export + HQ's import + HQ's reply + its import, over HTTP with\n"
	  "'syncd --hq' at URL (default: the 'hq_url = URL' line of the store's config):\n"
	  "commits the change log, uploads the bundle in chunks (resuming what HQ already\n"
	  "holds), waits for HQ's import, downloads HQ's reply (resuming by range) and\n"
	  "imports it. A progress line on a terminal; -v logs each step on stderr;\n"
	  "--chunk BYTES sets the upload's chunk size (default 256 KiB, at most 1 MiB). Exit 1\n"
	  "when HQ cannot be reached, refuses the requests or refuses the bundle (its\n"
	  "commits go again in the next one). docs/operations.md.\n\n"
	  "Example:\n  syncctl -C cas01 sync http://hq.example:8443\n" },
	{ "conflicts", cmd_conflicts,
	  "conflicts list [--json] [--table T] [--branch B] [--all] | show ID | resolve ID... HOW [--as NAME]",
	  "HQ: the administrators' conflict queue",
	  "list: the open entries (--all: resolved ones too), one line each: id, kind (data,\n"
	  "delete, insert, unauthorized, orphan, invariant), table, partition/key, branch,\n"
	  "policy and the conflicting columns;\n"
	  "--json gives per column its base, ours (HQ), theirs (branch) and provisional value.\n"
	  "show ID: one entry with every value. resolve ID... (or --table T / --branch B for\n"
	  "every open entry of a table or branch) HOW: --ours (HQ's values), --theirs (the\n"
	  "branch's), --base, or --set COL=VALUE / --null COL (with or without a side:\n"
	  "VALUE takes the column's type affinity). The chosen values become one HQ commit\n"
	  "naming the entries, signed by HQ or, with --as NAME, by that administrator's key\n"
	  "(keys add-admin); they reach the branch at its next import. The integrity kinds:\n"
	  "--ours leaves HQ's rows as they stand (the only way for invariant); unauthorized\n"
	  "also takes --theirs (authorise the branch's change), orphan --set/--null.\n\n"
	  "Examples:\n  syncctl -C hq conflicts list --json\n"
	  "  syncctl -C hq conflicts resolve 12 --theirs --as amina\n"
	  "  syncctl -C hq conflicts resolve --table job_seeker --ours\n" },
	{ "duplicates", cmd_duplicates,
	  "duplicates list [--json] [--all] | merge KEEP DROP [--table T] [--set COL=VALUE]... [--as NAME]",
	  "HQ: rows sharing a declared unique key, and their merge",
	  "list: the open duplicates (--all: merged ones too): two rows of one table whose\n"
	  "unique key (tz_unique, normalised) is the same, found after a merge. merge KEEP\n"
	  "DROP (primary keys; a composite key as a JSON array; --table T when both keys\n"
	  "are rows of several tables): KEEP takes the --set/--null values, every declared\n"
	  "reference to DROP in every tracked table points to KEEP, DROP is deleted and\n"
	  "redirected to KEEP (rows arriving later that reference it are re-pointed, a\n"
	  "branch's change to it is queued, never applied), in one HQ commit signed by HQ\n"
	  "or, with --as NAME, by that administrator. Branches learn it at their next import.\n\n"
	  "Examples:\n  syncctl -C hq duplicates list --json\n"
	  "  syncctl -C hq duplicates merge P-0007 P-0192 --set phone=0612345678 --as amina\n" },
	{ "generate", cmd_generate,
	  "generate (base | day (--branch CODE | --hq)) [--seed N] [--branches N] [--seekers N] ...",
	  "write deterministic agency data (tools/agency/schema.sql)",
	  "base: the reference data and every branch's rows (employers with ICE numbers, offers,\n"
	  "job seekers with Latin and Arabic names and CNIE numbers, interviews, applications,\n"
	  "placements, workshops) into store.db, in one transaction; at HQ before enrolling.\n"
	  "day --branch CODE: one offline day at that branch's store (domain.md 2.3, x --scale);\n"
	  "day --hq: HQ's side of the same day.  The two sides set up the conflict scenarios\n"
	  "C1 (--c1 persons registered at the first two branches), C2 (--c2 transfers by HQ),\n"
	  "C3 (--c3 names fixed at HQ, contacts at the branch), C4 (--c4 offers of 2 positions\n"
	  "every branch fills; give it to 'base') and C12 (--c12 statuses set on both sides).\n"
	  "Same --seed, --branches and --seekers everywhere: the output is a function of them.\n"
	  "Defaults: --seed 42 --branches 3 --seekers 2000 --day 1 --scale 1 --c1 2 --c2 2\n"
	  "--c3 3 --c4 1 --c12 2.  --progress shows progress when stderr is not a terminal.\n\n"
	  "Example:\n  syncctl -C hq generate base --seekers 2000 && syncctl -C hq commit\n"
	  "  syncctl -C cas01 generate day --branch CAS01 --json\n" },
	{ "keys", cmd_keys, "keys show | allowed-signers | revoke CODE | add-admin NAME",
	  "the key registry; allowed signers for git",
	  "'keys show' lists every key the store knows (HQ, branches, administrators) with\n"
	  "its status. 'keys allowed-signers' prints a file for gpg.ssh.allowedSignersFile\n"
	  "so that stock 'git verify-commit' checks the whole history. At HQ, 'keys revoke\n"
	  "CODE' refuses every later bundle signed by that key, and 'keys add-admin NAME'\n"
	  "makes an administrator's key pair (keys/admin-NAME).\n\n"
	  "Example:\n  syncctl -C hq keys allowed-signers > /tmp/signers\n"
	  "  git -C hq/history -c gpg.ssh.allowedSignersFile=/tmp/signers verify-commit HEAD\n"
	  "(git -C resolves a relative allowedSignersFile inside the history.)\n" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: syncctl [-C DIR] [--json] COMMAND [ARGS]\n\n"
		   "Tazamun keeps a branch's SQLite store in sync with headquarters.\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-28s %s\n", commands[i].usage, commands[i].summary);
	fprintf(f, "\nOptions:\n  -C DIR      run in the store DIR (default: .)\n"
		   "  --json      print one JSON document\n  --version   print the version\n\n"
		   "'syncctl COMMAND --help' says more about a command.\n");
}

int cli_fail(const char *what)
{
	const char *msg = tz_error_last();

	if (msg[0])
		fprintf(stderr, "syncctl: %s: %s\n", what, msg);
	else
		fprintf(stderr, "syncctl: %s\n", what);
	return CLI_EXIT_FAIL;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	const cli_command *c = find_command(cmd);
	va_list ap;

	fprintf(stderr, "syncctl %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: syncctl %s\n", c ? c->usage : cmd);
	return CLI_EXIT_USAGE;
}

bool cli_wants_help(const char *cmd, int argc, char **argv)
{
	const cli_command *c = find_command(cmd);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: syncctl %s\n\n%s.\n\n%s", c->usage, c->summary, c->help);
			return true;
		}
	}
	return false;
}

void cli_progress(const char *what, uint64_t done, uint64_t total, void *payload)
{
	(void)payload;
	if (total)
		fprintf(stderr, "\r%s: %llu/%llu (%llu%%)%s", what, (unsigned long long)done,
			(unsigned long long)total, (unsigned long long)(done * 100 / total), done == total ? "\n" : "");
	else
		fprintf(stderr, "\r%s: %llu", what, (unsigned long long)done);
}

int cli_take_json(cli_opts *o, int *argc, char **argv)
{
	int j = 1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			o->json = true;
		else
			argv[j++] = argv[i];
	}
	*argc = j;
	return j;
}

int cli_open(const cli_opts *o, tz_store **out)
{
	if (tz_store_open(out, o->dir) < 0)
		return TZ_EINVAL;
	if (o->progress)
		tz_store_set_progress(*out, cli_progress, NULL);
	return TZ_OK;
}

/* Fault sweeps (tests): with TZ_FAULTSIM_REPORT=FILE, say in FILE whether
 * the armed fault fired, so the sweep knows when k is past the last call. */
static void report_fault(void)
{
	const char *path = getenv("TZ_FAULTSIM_REPORT");
	FILE *f;

	if (path == NULL || (f = fopen(path, "w")) == NULL)
		return;
	fprintf(f, "%s\n", tz_faultsim_fired() ? "fired" : "not fired");
	fclose(f);
}

int main(int argc, char **argv)
{
	cli_opts o = { ".", false, isatty(2) != 0 };
	const cli_command *c;
	int i = 1, rc;

	if (tz_faultsim_from_env() < 0) {
		fprintf(stderr, "syncctl: %s\n", tz_error_last());
		return CLI_EXIT_USAGE;
	}
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-C") == 0 && i + 1 < argc) {
			o.dir = argv[++i];
		} else if (strcmp(argv[i], "--json") == 0) {
			o.json = true;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return CLI_EXIT_OK;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("syncctl %s\n", TZ_VERSION);
			return CLI_EXIT_OK;
		} else {
			fprintf(stderr, "syncctl: unknown option '%s'\n", argv[i]);
			usage(stderr);
			return CLI_EXIT_USAGE;
		}
	}
	if (i == argc) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if ((c = find_command(argv[i])) == NULL) {
		fprintf(stderr, "syncctl: '%s' is not a command (see 'syncctl --help')\n", argv[i]);
		return CLI_EXIT_USAGE;
	}
	if (cli_wants_help(c->name, argc - i, argv + i))
		return CLI_EXIT_OK;
	rc = c->run(&o, argc - i, argv + i);
	report_fault();
	return rc;
}
