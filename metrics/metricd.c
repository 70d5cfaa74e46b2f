/* metricd.c - main of the load metric agent (see metricd(8)). */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "common/status_http.h"
#include "metrics/agent.h"
#include "metrics/drain.h"
#include "metrics/server.h"

#define MAX_SERVERS 65 /* listen addresses plus lbcd-listen */

static const struct prog_info metricd_info = {
    "metricd",
    "Computes this host's load rating and answers the broker's polls\n"
    "(UDP) and monitoring (HTTP JSON and Prometheus text).",
    "      --drain[=REASON]   drain this member (rating 0) and exit; lasts\n"
    "                         until --undrain, across restarts\n"
    "      --undrain          end the drain and exit\n",
    CONFIG_PART_METRICS,
};

enum drain_cmd { CMD_RUN, CMD_DRAIN, CMD_UNDRAIN };

struct metricd {
	const char *config_path;
	struct config *cfg;
	struct agent *agent;
	struct metric_server *servers[MAX_SERVERS];
	size_t nservers;
	bool ready; /* answering polls (the first rating is computed) */
};

struct drain_args {
	enum drain_cmd cmd;
	const char *reason;
};

static int
drain_opt_cb(int ch, const char *arg, void *ctx)
{
	struct drain_args *d = ctx;

	d->cmd = ch == 'D' ? CMD_DRAIN : CMD_UNDRAIN;
	d->reason = ch == 'D' ? arg : NULL;
	return 0;
}

static enum drain_cmd
parse_args(int argc, char **argv, struct daemon_opts *opts, const char **reason)
{
	static const struct option drain_opts[] = {
	    {"drain", optional_argument, NULL, 'D'},
	    {"undrain", no_argument, NULL, 'U'},
	    {NULL, 0, NULL, 0},
	};
	struct drain_args d = {CMD_RUN, NULL};

	daemon_args_ext(argc, argv, &metricd_info, opts, drain_opts, drain_opt_cb, &d);
	*reason = d.reason;
	return d.cmd;
}

/* Poll signatures are HMAC-SHA256 only. */
static int
check_config(const struct config *cfg)
{
	const struct config_key *k = cfg->metrics.key;

	if (k != NULL && k->algorithm != CONFIG_HMAC_SHA256) {
		fprintf(stderr,
		    "metricd: %s: metrics: key '%s' uses %s; polls are signed "
		    "with hmac-sha256 only\n",
		    cfg->path, k->name, k->algorithm_name);
		return -1;
	}
	return 0;
}

static int
run_drain(const struct config *cfg, enum drain_cmd cmd, const char *reason)
{
	const char *path = cfg->metrics.drain_file;

	if (cmd == CMD_DRAIN ? drain_set(path, reason) == -1 : drain_clear(path) == -1) {
		fprintf(stderr, "metricd: %s: %s\n", path, strerror(errno));
		return 1;
	}
	printf("metricd: %s (%s); a running metricd follows within a second\n",
	    cmd == CMD_DRAIN ? "drained" : "undrained", path);
	return 0;
}

static void
ready_cb(void *arg)
{
	struct metricd *md = arg;

	for (size_t i = 0; i < md->nservers; i++)
		if (metric_server_enable(md->servers[i]) == -1)
			log_warnx("metrics: cannot start answering polls");
	log_info("answering polls");
	md->ready = true;
	sdnotify_ready(); /* systemd: only now, not at "started" */
}

static void
reload(struct metricd *md)
{
	char err[1024];
	struct config *cfg = config_load(md->config_path, err, sizeof(err));

	if (cfg == NULL) {
		log_warnx("reload: %s; keeping the running configuration", err);
		return;
	}
	if (check_config(cfg) == -1 || agent_reconfigure(md->agent, cfg) == -1) {
		log_warnx("reload: keeping the running configuration");
		config_free(cfg);
		return;
	}
	config_free(md->cfg);
	md->cfg = cfg;
	log_info("reload: configuration %s in use (listen addresses change on restart)",
	    md->config_path);
}

/* SIGHUP; READY=1 again only when the daemon already was ready. */
static void
reload_cb(void *arg)
{
	struct metricd *md = arg;

	sdnotify_reloading();
	reload(md);
	if (md->ready)
		sdnotify_ready();
}

static int
add_server(
    struct metricd *md, struct event_base *base, const struct addr *a, enum metric_server_kind kind)
{
	if (md->nservers == MAX_SERVERS) {
		log_warnx("metrics: more than %d listen addresses", MAX_SERVERS);
		return -1;
	}
	md->servers[md->nservers] = metric_server_new(base, a, kind, md->agent);
	if (md->servers[md->nservers] == NULL)
		return -1;
	md->nservers++;
	return 0;
}

static int
bind_all(struct metricd *md, struct event_base *base)
{
	const struct config_metrics *m = &md->cfg->metrics;

	for (size_t i = 0; i < m->listen.n; i++)
		if (add_server(md, base, &m->listen.v[i], METRIC_SERVER_NATIVE) == -1)
			return -1;
	if (m->lbcd_listen.len != 0 &&
	    add_server(md, base, &m->lbcd_listen, METRIC_SERVER_LBCD) == -1)
		return -1;
	return 0;
}

int
main(int argc, char **argv)
{
	struct metricd md = {0};
	struct daemon_opts opts;
	struct event_base *base = NULL;
	struct status_http *sh = NULL;
	const char *reason = NULL;
	enum drain_cmd cmd = parse_args(argc, argv, &opts, &reason);
	int rc = 1;

	md.config_path = opts.config_path;
	md.cfg = daemon_load_config(&metricd_info, &opts, check_config);
	if (cmd != CMD_RUN) {
		rc = run_drain(md.cfg, cmd, reason);
		config_free(md.cfg);
		return rc;
	}
	if ((base = event_base_new()) == NULL) {
		log_warnx("cannot create the event loop");
		goto done;
	}
	/* Sockets first, then privileges, then untrusted input. */
	if ((md.agent = agent_new(base, md.cfg)) == NULL || bind_all(&md, base) == -1)
		goto done;
	if (md.cfg->metrics.http_listen.len != 0 &&
	    (sh = status_http_new(base, &md.cfg->metrics.http_listen, "metricd", agent_status_json,
	         agent_metrics_prom, md.agent)) == NULL)
		goto done;
	if (daemon_signals(base, reload_cb, &md) == -1 || daemon_drop_privileges(md.cfg) == -1 ||
	    daemon_write_pidfile(md.cfg) == -1 || agent_start(md.agent, ready_cb, &md) == -1)
		goto done;
	log_info("started (mxbroker %s)", MXB_VERSION);
	event_base_dispatch(base);
	sdnotify_stopping();
	rc = 0;
done:
	status_http_free(sh);
	for (size_t i = 0; i < md.nservers; i++)
		metric_server_free(md.servers[i]);
	agent_free(md.agent);
	if (base != NULL)
		event_base_free(base);
	config_free(md.cfg);
	return rc;
}
