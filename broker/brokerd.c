/* brokerd.c - main of the DNS load broker. */
#include <stdlib.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/skeleton.h"

static const struct prog_info brokerd_info = {
	"brokerd",
	"Authoritative DNS for a mail subdomain, answering cluster names with the\n"
	"least-loaded live members.",
	NULL,
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct config *cfg;
	int rc;

	daemon_args(argc, argv, &brokerd_info, &opts);
	cfg = daemon_load_config(&brokerd_info, &opts, NULL);
	rc = skeleton_run(&brokerd_info, cfg, &cfg->broker.status_listen);
	config_free(cfg);
	return rc;
}
