/* smtp-relayd.c - main of the SMTP relay: bind, drop privileges, recover the queue, serve. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "common/status_http.h"
#include "smtp-relay/address.h"
#include "smtp-relay/auth.h"
#include "smtp-relay/control.h"
#include "smtp-relay/delivery.h"
#include "smtp-relay/disk_pool.h"
#include "smtp-relay/intake.h"
#include "smtp-relay/maildir.h"
#include "smtp-relay/queue.h"
#include "smtp-relay/smtp_server.h"
#include "smtp-relay/tls_server.h"

static const struct prog_info relayd_info = {
    "smtp-relayd",
    "A minimal relay SMTP server with a crash-safe queue, retries, bounces\n"
    "and local Maildir delivery.",
    NULL,
    CONFIG_PART_RELAY,
};

/* Everything the daemon owns; the modules borrow from here (teardown in main). */
struct relayd {
	struct config *cfg;
	struct policy *policy; /* built from cfg->relay; server and delivery share it */
	struct event_base *base;
	struct queue *queue;
	struct disk_pool *pool; /* commits, delivery's disk work, the intake's probe */
	struct intake *intake;
	struct smtp_server *server;
	struct tls_server *tls; /* NULL: no relay { tls { } } */
	struct auth *auth;      /* NULL: no auth-file */
	struct status_http *status;
	struct control *control;
	struct delivery *delivery;
	uid_t uid; /* (uid_t)-1: stay as we are */
	gid_t gid;
};

/* -t: the relay's own checks beyond the grammar (local-aliases-file, auth-file). */
static int
check_relay(const struct config *cfg)
{
	struct policy *p = policy_new(&cfg->relay);
	struct auth *a = NULL;
	char err[512];
	int rc = p != NULL ? 0 : -1;

	policy_free(p);
	if (cfg->relay.auth_file != NULL &&
	    (a = auth_new(cfg->relay.auth_file, NULL, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: relay: %s\n", relayd_info.name, err);
		rc = -1;
	}
	auth_free(a);
	return rc;
}

/* SIGHUP: a new configuration and policy, swapped in only when both are good. */
static void
reload(struct relayd *d)
{
	char err[1024];
	struct config *cfg = config_load(d->cfg->path, err, sizeof(err));
	struct policy *p;

	if (cfg == NULL) {
		log_warnx("reload: %s: keeping the running configuration", err);
		return;
	}
	if ((p = policy_new(&cfg->relay)) == NULL) {
		log_warnx("reload: keeping the running configuration");
		config_free(cfg);
		return;
	}
	/* A new certificate for new sessions; a bad one keeps the running one.
	 * TLS cannot be switched on or off without a restart (listeners). */
	if (d->tls != NULL && cfg->relay.tls.present)
		tls_server_reload(d->tls, &cfg->relay.tls);
	if (d->auth != NULL && cfg->relay.auth_file != NULL)
		auth_reload(d->auth, cfg->relay.auth_file);
	smtp_server_reconfigure(d->server, &cfg->relay, p);
	intake_reconfigure(d->intake, &cfg->relay);
	delivery_reconfigure(d->delivery, cfg, p);
	policy_free(d->policy);
	d->policy = p;
	config_free(d->cfg);
	d->cfg = cfg;
	log_info("reload: configuration reloaded (listen addresses need a restart)");
}

/* SIGHUP, with RELOADING=1 and READY=1 around it for systemd. */
static void
reload_cb(void *arg)
{
	sdnotify_reloading();
	reload(arg);
	sdnotify_ready();
}

/* The user we will run as, so the spool and socket can be handed over. */
static void
lookup_user(struct relayd *d)
{
	struct passwd *pw;

	d->uid = (uid_t)-1;
	d->gid = (gid_t)-1;
	if (geteuid() != 0 || d->cfg->options.user == NULL)
		return;
	if ((pw = getpwnam(d->cfg->options.user)) != NULL) {
		d->uid = pw->pw_uid;
		d->gid = pw->pw_gid;
	}
}

/*
 * Create and open the spool (as root) and give it to the unprivileged user;
 * its files are read only after the privilege drop (recover_queue).
 */
static int
prepare_queue(struct relayd *d)
{
	static const char *const sub[] = {"", "/tmp", "/queue", "/corrupt"};
	const char *dir = d->cfg->relay.queue_directory;
	char path[4096];

	if ((d->queue = queue_open(dir, true)) == NULL)
		return -1;
	for (size_t i = 0; d->uid != (uid_t)-1 && i < 4; i++) {
		snprintf(path, sizeof(path), "%s%s", dir, sub[i]);
		if (chown(path, d->uid, d->gid) == -1) {
			log_warn("queue: %s: chown", path);
			return -1;
		}
	}
	return 0;
}

/* /status and /metrics: the server's counters, then delivery's. */
static void
status_json(struct json_object *root, void *arg)
{
	struct relayd *d = arg;

	smtp_server_status_json(root, d->server);
	delivery_status_json(root, d->delivery);
}

static void
status_metrics(struct evbuffer *out, void *arg)
{
	struct relayd *d = arg;

	smtp_server_metrics(out, d->server);
	delivery_metrics(out, d->delivery);
}

/* The queue runner: resolver files are read now, before the privilege drop. */
static int
setup_delivery(struct relayd *d)
{
	char err[1024];

	if (maildir_prepare(d->cfg->relay.maildir_root, (int)d->uid, (int)d->gid) == -1)
		return -1;
	d->delivery = delivery_new(d->base, d->cfg, d->queue, d->pool, d->policy, err, sizeof(err));
	if (d->delivery == NULL) {
		log_warnx("delivery: %s", err);
		return -1;
	}
	smtp_server_set_queued(d->server, delivery_queued, d->delivery);
	return 0;
}

/* The queue's disk workers and the intake that watches their commits. */
static int
setup_disk(struct relayd *d)
{
	if ((d->pool = disk_pool_new(d->base, d->queue, DISK_POOL_THREADS)) == NULL ||
	    (d->intake = intake_new(d->base, d->queue, d->pool, &d->cfg->relay)) == NULL)
		return -1;
	disk_pool_set_observer(d->pool, intake_commit_cb, d->intake);
	return 0;
}

/* The SMTP, submission and smtps listeners, with TLS when configured. */
static int
listen_all(struct relayd *d)
{
	const struct config_relay *r = &d->cfg->relay;
	const struct {
		const struct config_addrs *addrs;
		enum smtp_listener kind;
	} lists[] = {{&r->listen, SMTP_LISTENER_SMTP},
	    {&r->submission_listen, SMTP_LISTENER_SUBMISSION},
	    {&r->smtps_listen, SMTP_LISTENER_SMTPS}};

	if (r->tls.present) {
		if ((d->tls = tls_server_new(&r->tls)) == NULL)
			return -1;
		smtp_server_set_tls(d->server, d->tls);
	}
	if (r->auth_file != NULL) {
		if ((d->auth = auth_new(r->auth_file, d->pool, NULL, 0)) == NULL)
			return -1;
		smtp_server_set_auth(d->server, d->auth);
	}
	for (size_t k = 0; k < sizeof(lists) / sizeof(lists[0]); k++)
		for (size_t i = 0; i < lists[k].addrs->n; i++)
			if (smtp_server_listen(d->server, &lists[k].addrs->v[i], lists[k].kind) ==
			    -1)
				return -1;
	return 0;
}

static int
setup(struct relayd *d)
{
	const struct config_relay *r = &d->cfg->relay;

	lookup_user(d);
	if (prepare_queue(d) == -1 || (d->policy = policy_new(r)) == NULL || setup_disk(d) == -1)
		return -1;
	if ((d->server = smtp_server_new(d->base, r, d->policy, d->queue, d->pool, d->intake)) ==
	        NULL ||
	    setup_delivery(d) == -1)
		return -1;
	if (listen_all(d) == -1)
		return -1;
	if (r->status_listen.len != 0 &&
	    (d->status = status_http_new(d->base, &r->status_listen, relayd_info.name, status_json,
	         status_metrics, d)) == NULL)
		return -1;
	if ((d->control = control_new(d->base, r->control_socket, d->queue, d->server, (int)d->uid,
	         (int)d->gid)) == NULL)
		return -1;
	control_set_flush(d->control, delivery_flush, d->delivery);
	return daemon_signals(d->base, reload_cb, d);
}

/* After the privilege drop: clean tmp/, validate queue/, count what is
 * queued (queue_count starts from here). */
static int
recover_queue(struct relayd *d)
{
	struct queue_recovery rec;

	if (queue_recover(d->queue, true, 0, &rec, NULL, NULL) == -1 ||
	    queue_keep_spares(d->queue, QUEUE_SPARES, QUEUE_SPARE_SIZE) == -1)
		return -1;
	log_info("queue: %s: %zu messages, %zu recipients pending; removed %zu stale, "
	         "%zu orphans; moved %zu damaged and %zu stray files to corrupt/",
	    d->cfg->relay.queue_directory, rec.messages, rec.recipients_pending, rec.stale,
	    rec.orphans, rec.damaged, rec.stray);
	return 0;
}

/*
 * Users before what they borrow: the sessions cancel their commits, then
 * the pool joins its threads (the jobs of delivery and the intake's probe
 * point into them), then the rest.
 */
static void
teardown(struct relayd *d)
{
	control_free(d->control);
	smtp_server_free(d->server);
	tls_server_free(d->tls);
	disk_pool_free(d->pool);
	auth_free(d->auth);
	delivery_free(d->delivery);
	intake_free(d->intake);
	policy_free(d->policy);
	status_http_free(d->status);
	queue_close(d->queue);
}

/*
 * The event loop.  With epoll's change list, the changes to one socket's
 * interest made within one loop turn (a reply queued and written, reading
 * paused for a commit and resumed) reach the kernel as one epoll_ctl or
 * none: 18-24 calls per message before.  Sockets are never dup()ed, the
 * one case where the change list misleads.
 */
static struct event_base *
new_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

int
main(int argc, char **argv)
{
	struct daemon_opts opts;
	struct relayd d = {0};
	int rc = 1;

	daemon_args(argc, argv, &relayd_info, &opts);
	d.cfg = daemon_load_config(&relayd_info, &opts, check_relay);
	if ((d.base = new_base()) == NULL) {
		log_warnx("cannot create the event loop");
		goto done;
	}
	if (setup(&d) == -1 || daemon_drop_privileges(d.cfg) == -1 ||
	    daemon_write_pidfile(d.cfg) == -1 || recover_queue(&d) == -1 ||
	    delivery_start(d.delivery) == -1)
		goto done;
	log_info("started (mxbroker %s)", MXB_VERSION);
	sdnotify_ready(); /* listening, unprivileged, queue recovered */
	event_base_dispatch(d.base);
	sdnotify_stopping();
	rc = 0;
done:
	teardown(&d);
	if (d.base != NULL)
		event_base_free(d.base);
	config_free(d.cfg);
	return rc;
}
