/*
 * syncd - the Tazamun sync daemon.  The HTTP hub (--hq) and the branch
 * loop (--branch) arrive with the sync-over-HTTP work; until then this
 * program says so and exits with the usage code, so that scripts and unit
 * files can already name it.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	FILE *out = (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) ? stdout : stderr;

	fprintf(out, "usage: syncd --hq DIR --listen ADDR:PORT\n"
		     "       syncd --branch DIR --hq URL\n\n"
		     "syncd is not implemented in this version: sync by file with\n"
		     "'syncctl export' and 'syncctl import' (see docs/architecture.md).\n");
	return out == stdout ? 0 : 2;
}
