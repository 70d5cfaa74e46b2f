/* skeleton.c - a minimal daemon loop: status endpoint, signals, privileges. */
#include "common/skeleton.h"

#include <event2/event.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/status_http.h"

int
skeleton_run(const struct prog_info *info, const struct config *cfg, const struct addr *status)
{
	struct event_base *base = event_base_new();
	struct status_http *sh = NULL;
	int rc = 1;

	if (base == NULL) {
		log_warnx("cannot create the event loop");
		return 1;
	}
	if (status->len != 0) {
		sh = status_http_new(base, status, info->name, NULL, NULL, NULL);
		if (sh == NULL)
			goto done;
	}
	if (daemon_signals(base, NULL, NULL) == -1 || daemon_drop_privileges(cfg) == -1 ||
	    daemon_write_pidfile(cfg) == -1)
		goto done;
	log_info("started (mxbroker %s)", MXB_VERSION);
	event_base_dispatch(base);
	rc = 0;
done:
	status_http_free(sh);
	event_base_free(base);
	return rc;
}
