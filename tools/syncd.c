/*
 * syncd - the Tazamun sync daemon.  The HTTP hub (--hq) and the branch
 * loop (--branch) arrive with the sync-over-HTTP work; until then it only
 * prints its usage (the first issue's interim form), exiting 0 for --help
 * and 2 otherwise.
 */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	FILE *out = (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) ? stdout : stderr;

	fprintf(out, "usage: syncd --hq DIR --listen ADDR:PORT\n"
		     "       syncd --branch DIR --hq URL\n\n"
		     "This version has no network sync yet: it keeps a store and its\n"
		     "history (see 'syncctl --help'); bundles and syncd come next.\n");
	return out == stdout ? 0 : 2;
}
