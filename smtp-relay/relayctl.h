/*
 * relayctl.h - the commands of smtp-relayctl (list, show, remove, flush,
 * analyze, stats, pause, resume), in human or JSON form.  list, show,
 * analyze and stats read the queue directory directly; flush, pause and
 * resume ask the daemon over the control socket; remove asks the daemon when
 * it runs (so it never races with it) and unlinks the file itself otherwise.
 */
#ifndef MXB_RELAYCTL_H
#define MXB_RELAYCTL_H

#include <stdbool.h>
#include <stdio.h>

struct config_relay;

/* Exit statuses besides 0 (sysexits.h values where one fits). */
#define RELAYCTL_EXIT_FAIL        1 /* the command failed (no such message...) */
#define RELAYCTL_EXIT_USAGE       64
#define RELAYCTL_EXIT_UNAVAILABLE 69 /* flush, pause, resume: the daemon does not answer */

struct relayctl_opts {
	bool json;
	bool repair; /* analyze --repair */
	FILE *out;   /* normally stdout */
};

/*
 * Run one command: argv[0] is the command name, the rest its operands.
 * Errors are written to stderr as "smtp-relayctl: ..."; returns the exit
 * status.
 */
int relayctl_run(
    const struct config_relay *relay, const struct relayctl_opts *opts, int argc, char **argv);

#endif
