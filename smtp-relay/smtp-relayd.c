/* smtp-relayd.c - main of the SMTP relay. */
#include <stdlib.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/skeleton.h"

static const struct prog_info relayd_info = {
	"smtp-relayd",
	"A minimal relay SMTP server with a crash-safe queue, retries, bounces\n"
	"and local Maildir delivery.",
	NULL,
};

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct config *cfg;
	int rc;

	daemon_args(argc, argv, &relayd_info, &opts);
	cfg = daemon_load_config(&relayd_info, &opts, NULL);
	rc = skeleton_run(&relayd_info, cfg, &cfg->relay.status_listen);
	config_free(cfg);
	return rc;
}
