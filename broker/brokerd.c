/* brokerd.c - main of the DNS load broker: authoritative DNS for the zones
 * of `broker { zone ... }`, answered from prepared wire-format answers, and
 * the `cluster` names kept pointing at their least-loaded members
 * (broker.c assembles both; cluster*.c do the brokering). */
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "broker/broker.h"
#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/sdnotify.h"

static const struct prog_info brokerd_info = {
    "brokerd",
    "Authoritative DNS for a mail subdomain, answering cluster names with the\n"
    "least-loaded live members.",
    NULL,
    CONFIG_PART_BROKER,
};

/* SIGHUP; systemd hears RELOADING=1 and READY=1 around it (Type=notify). */
static void
reload_cb(void *arg)
{
	sdnotify_reloading();
	broker_reload(arg);
	sdnotify_ready();
}

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct config *cfg;
	struct event_base *base = NULL;
	struct broker *b = NULL;
	int rc = 1;

	daemon_args(argc, argv, &brokerd_info, &opts);
	cfg = daemon_load_config(&brokerd_info, &opts, broker_check_zones);
	/* Query threads are woken and stopped from the main thread. */
	if (evthread_use_pthreads() == -1 || (base = event_base_new()) == NULL) {
		log_warnx("cannot create the event loop");
		goto done;
	}
	/* Sockets first, then privileges, then threads that read the network. */
	b = broker_new(base, cfg);
	if (b == NULL || daemon_signals(base, reload_cb, b) == -1 ||
	    daemon_drop_privileges(cfg) == -1 || daemon_write_pidfile(cfg) == -1 ||
	    broker_start(b) == -1)
		goto done;
	log_info("started (mxbroker %s)", MXB_VERSION);
	sdnotify_ready(); /* bound, unprivileged, zones loaded, threads answering */
	event_base_dispatch(base);
	sdnotify_stopping();
	rc = 0;
done:
	broker_free(b);
	if (base != NULL)
		event_base_free(base);
	config_free(cfg);
	return rc;
}
