/*
 * relayctl.h - the commands of smtp-relayctl (list, show, remove, flush,
 * analyze, stats, pause, resume), in human or JSON form.  list, show,
 * analyze and stats read the queue directory directly; flush, pause and
 * resume ask the daemon over the control socket; remove asks the daemon when
 * it runs (so it never races with it) and unlinks the file itself otherwise.
 * sts-fetch runs the MTA-STS module (mta_sts.h) alone for one domain, with
 * the relay's MTA-STS settings and the resolver's name servers.
 */
#ifndef MXB_RELAYCTL_H
#define MXB_RELAYCTL_H

#include <stdbool.h>
#include <stdio.h>

struct config_relay;
struct config_resolver;

/* Exit statuses besides 0 (sysexits.h values where one fits). */
#define RELAYCTL_EXIT_FAIL        1 /* the command failed (no such message...) */
#define RELAYCTL_EXIT_USAGE       64
#define RELAYCTL_EXIT_UNAVAILABLE 69 /* flush, pause, resume: the daemon does not answer */
#define RELAYCTL_EXIT_TEMPFAIL    75 /* sts-fetch: the policy could not be obtained */

struct relayctl_opts {
	bool json;
	bool repair;                            /* analyze --repair */
	FILE *out;                              /* normally stdout */
	const struct config_resolver *resolver; /* sts-fetch: DNS servers; NULL = resolv.conf */
};

/*
 * Run one command: argv[0] is the command name, the rest its operands.
 * Errors are written to stderr as "smtp-relayctl: ..."; returns the exit
 * status.
 */
int relayctl_run(
    const struct config_relay *relay, const struct relayctl_opts *opts, int argc, char **argv);

#endif
