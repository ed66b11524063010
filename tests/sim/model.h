/*
 * The simulation's model of the merge rules (tests/sim/model.c), written
 * from docs/merge.md and docs/protocol.md, never from conflict/ or
 * store/sync*.c.  It tracks causality, not trees: every value any replica
 * writes is a new "edit" with a unique id; each replica knows, per row, the
 * set of edits it has seen.  Two edits of one cell (or group, or row
 * existence) conflict when neither side knew the other's: that is what a
 * three-way merge against the right base finds, said without a base.
 */
#ifndef TZ_SIM_MODEL_H
#define TZ_SIM_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define M_MAX_ROWS 256
#define M_MAX_EDITS 8192
#define M_MAX_REPLICAS 5        /* HQ + up to 4 branches */
#define M_NCOLS 5               /* person: a b c d e; place: x y z */
#define M_WORDS (M_MAX_EDITS / 64)

enum { T_PERSON = 0, T_PLACE = 1 };

typedef struct {
	char key[24];
	int table;
	int owner;              /* person: branch index 1..N; place: 0 */
	bool dup;               /* a "duplicate registration" key (never deleted) */
} m_rowdef;

typedef struct {
	bool present;           /* this replica has heard of the row */
	bool alive;
	int exist;              /* edit id of its insert, or of its delete */
	int col[M_NCOLS];       /* edit id of each column's value */
} m_cell;

typedef struct {
	m_cell row[M_MAX_ROWS];
	uint64_t known[M_MAX_ROWS][M_WORDS];
} m_state;

typedef struct {
	int row, col;           /* col -1: the row's existence */
	char value[32];
	int author;             /* replica index, 0 = HQ */
	int fate;               /* 0 live, 1 superseded by a later edit, 2 decided by a policy */
} m_edit;

typedef struct {
	char kind[8];           /* data, delete, insert */
	int row, branch;
	char cols[64];          /* conflicting columns, comma-separated, sorted */
} m_entry;

typedef struct {
	int nbranches;
	int nrows, nedits, nentries;
	int import_mark;        /* first entry of the bundle being integrated */
	m_rowdef rows[M_MAX_ROWS];
	m_edit edits[M_MAX_EDITS];
	m_entry entries[1024];
	m_state rep[M_MAX_REPLICAS];   /* 0 = HQ */
} model;

extern const char *const m_colnames[2][M_NCOLS];
extern const int m_ncols[2];

void m_init(model *m, int nbranches);
/* A new row at replica r (every replica when r < 0: the enrolled data). */
int m_insert(model *m, int r, int table, int owner, const char *key, bool dup, const char *const *values);
void m_update(model *m, int r, int row, int col, const char *value);
void m_delete(model *m, int r, int row);
/* Does replica r's view hold the row (its partition, or shared)? */
bool m_in_view(const model *m, int r, int row);
/* Copy of replica `from`'s rows in `to`'s view: the bundle's content. */
void m_snapshot(const model *m, int from, int to, m_state *out);
/* HQ integrates one stretch of branch b's bundle (m_hq_begin first, once
 * per bundle: a row queues one entry per bundle, however many stretches). */
void m_hq_begin(model *m);
void m_hq_import(model *m, int b, const m_state *s);
/* Branch b imports HQ's answer: local values win locally. */
void m_branch_import(model *m, int b, const m_state *s);
/* Render replica r's live rows in replica view's view as text, one line
 * per row, sorted (view = r: its own store; r = 0: HQ's rows a branch
 * should hold once converged). */
void m_render(const model *m, int r, int view, char **out, size_t *len);
/* Render the queue, one line per entry, sorted. */
void m_render_queue(const model *m, char **out, size_t *len);

#endif
