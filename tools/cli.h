/*
 * cli.h - what syncctl's command files share: the parsed global options,
 * output helpers (text and JSON), and the failure path.  Only tools/
 * prints or exits (STYLE.md).
 */
#ifndef TZ_CLI_H
#define TZ_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "store/tz_store.h"

/* Exit codes (docs/cli.md): 0 success, 1 failure, 2 usage error,
 * 3 verify found problems. */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_PROBLEMS 3

typedef struct {
	const char *dir;      /* -C DIR, default "." */
	bool json;            /* --json */
	bool progress;        /* stderr is a terminal */
} cli_opts;

typedef struct {
	const char *name;
	int (*run)(const cli_opts *o, int argc, char **argv);
	const char *usage;    /* "commit [-m MSG]" */
	const char *summary;  /* one line */
	const char *help;     /* what it does, options, an example */
} cli_command;

/* Print "syncctl: <what>: <last error>" on stderr; returns CLI_EXIT_FAIL. */
int cli_fail(const char *what);
/* Print a usage error for `cmd` on stderr; returns CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) TZ_PRINTF(2, 3);
/* True when argv holds -h or --help (and prints the command's help). */
bool cli_wants_help(const char *cmd, int argc, char **argv);
/* Take "--json" out of argv (setting o->json); returns the new argc. */
int cli_take_json(cli_opts *o, int *argc, char **argv);
/* The progress line on stderr (a tz_progress_cb). */
void cli_progress(const char *what, uint64_t done, uint64_t total, void *payload);
/* Open the store named by -C, with the progress line when on a terminal. */
int cli_open(const cli_opts *o, tz_store **out);

/* JSON output into a buffer. */
void json_str(tz_buf *b, const void *s, size_t n);
void json_cstr(tz_buf *b, const char *s);
void json_value(tz_buf *b, const tz_value *v);
/* Write the buffer to stdout with a final newline; CLI_EXIT_FAIL on error. */
int cli_emit(tz_buf *b);

/* A value as a row line shows it: "t Rabat", "i 42", "n". */
void text_value(tz_buf *b, const tz_value *v);

int cmd_init_hq(const cli_opts *o, int argc, char **argv);
int cmd_schema(const cli_opts *o, int argc, char **argv);
int cmd_commit(const cli_opts *o, int argc, char **argv);
int cmd_checkout(const cli_opts *o, int argc, char **argv);
int cmd_keys(const cli_opts *o, int argc, char **argv);
int cmd_status(const cli_opts *o, int argc, char **argv);
int cmd_log(const cli_opts *o, int argc, char **argv);
int cmd_diff(const cli_opts *o, int argc, char **argv);
int cmd_show(const cli_opts *o, int argc, char **argv);
int cmd_verify(const cli_opts *o, int argc, char **argv);
int cmd_gc(const cli_opts *o, int argc, char **argv);
int cmd_branch(const cli_opts *o, int argc, char **argv);
int cmd_init_branch(const cli_opts *o, int argc, char **argv);
int cmd_export(const cli_opts *o, int argc, char **argv);
int cmd_import(const cli_opts *o, int argc, char **argv);
int cmd_conflicts(const cli_opts *o, int argc, char **argv);
int cmd_duplicates(const cli_opts *o, int argc, char **argv);
int cmd_netsync(const cli_opts *o, int argc, char **argv);
int cmd_generate(const cli_opts *o, int argc, char **argv);

#endif
