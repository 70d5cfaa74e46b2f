/* metricd.c - main of the load metric agent. */
#include <stdlib.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/skeleton.h"

static const struct prog_info metricd_info = {
	"metricd",
	"Computes this host's load rating and answers the broker's polls\n"
	"(UDP) and monitoring (HTTP JSON and Prometheus text).",
	NULL,
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct config *cfg;
	int rc;

	daemon_args(argc, argv, &metricd_info, &opts);
	cfg = daemon_load_config(&metricd_info, &opts, NULL);
	rc = skeleton_run(&metricd_info, cfg, &cfg->metrics.http_listen);
	config_free(cfg);
	return rc;
}
