/* smtp-relayctl.c - control the SMTP relay queue (commands in relayctl.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "smtp-relay/relayctl.h"

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: smtp-relayctl [-c FILE] [--json] "
	    "list | show ID | remove ID | flush [ID] | analyze [--repair] | stats |\n"
	    "       pause | resume | sts-fetch DOMAIN [MX...]\n");
	if (out == stderr) {
		fprintf(out, "Try 'smtp-relayctl --help' for more information.\n");
		return;
	}
	fprintf(out,
	    "List, show, remove, flush and analyze queued messages; pause and resume intake.\n\n"
	    "  list            every queued message and its recipients\n"
	    "  show ID         one message: envelope and content\n"
	    "  remove ID       delete a message (through smtp-relayd when it runs)\n"
	    "  flush [ID]      ask smtp-relayd to attempt delivery now\n"
	    "  analyze         report stale, damaged, orphaned and stray queue files\n"
	    "  stats           queue totals, the daemon's counters and whether it\n"
	    "                  takes mail now (accepting), as name: value lines\n"
	    "  pause           new SMTP connections get 421 until resume (delivery\n"
	    "                  goes on; not kept across a restart)\n"
	    "  resume          take mail again\n"
	    "  sts-fetch DOMAIN [MX...]\n"
	    "                  find DOMAIN's MTA-STS policy as delivery would (the\n"
	    "                  cache in mta-sts-cache is used and updated) and tell\n"
	    "                  whether each MX host matches it; exit 75 when the\n"
	    "                  policy could not be obtained\n\n"
	    "  -c FILE         configuration file (default " DAEMON_DEFAULT_CONFIG ")\n"
	    "  --json          one JSON object; errors as {\"error\": ...}\n"
	    "  --repair        analyze: remove stale files and orphans, move damaged\n"
	    "                  files to corrupt/\n"
	    "  -h, --help      show this help and exit\n"
	    "  -V, --version   show the version and exit\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, 'j'},
	    {"repair", no_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	struct relayctl_opts opts = {false, false, stdout, NULL};
	const char *path = DAEMON_DEFAULT_CONFIG;
	struct config *cfg;
	char err[1024];
	int ch, rc;

	while ((ch = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': path = optarg; break;
		case 'j': opts.json = true; break;
		case 'r': opts.repair = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("smtp-relayctl (mxbroker) %s\n", MXB_VERSION); return 0;
		default: usage(stderr); return RELAYCTL_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		usage(stderr);
		if (opts.json)
			jsonout_error("no command given");
		return RELAYCTL_EXIT_USAGE;
	}
	log_init("smtp-relayctl", LOG_LEVEL_WARN, false);
	if ((cfg = config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "smtp-relayctl: %s\n", err);
		if (opts.json)
			jsonout_error("%s", err);
		return RELAYCTL_EXIT_FAIL;
	}
	opts.resolver = &cfg->resolver;
	rc = relayctl_run(&cfg->relay, &opts, argc - optind, argv + optind);
	config_free(cfg);
	return rc;
}
