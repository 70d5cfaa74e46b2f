/* mxroute.c - show how mail to a domain or address is routed, or answer
 * Postfix socketmap lookups with the same routes. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/daemon.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "resolver/resolver.h"
#include "resolver/routefmt.h"
#include "resolver/socketmap.h"
#include "smtp-relay/tls_policy.h"

#define EXIT_ROUTED 0
#define EXIT_PERM   1
#define EXIT_TEMP   2
#define EXIT_USAGE  64
#define EXIT_CONFIG 78 /* EX_CONFIG */

/* --json: results and errors go to stdout as JSON (common/jsonout.h). */
static bool json_out;

struct batch;

/* One destination of a run and its result. */
struct slot {
	struct batch *b;
	struct route_result *res;
};

struct batch {
	struct event_base *base;
	struct slot *slots;
	size_t pending;
};

/* An error for the user: {"error": ...} on stdout under --json, else a
 * line on stderr. */
static void __attribute__((format(printf, 1, 2))) report(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json_out)
		jsonout_error("%s", msg);
	else
		fprintf(stderr, "mxroute: %s\n", msg);
}

static void
usage(FILE *out)
{
	fprintf(out,
	    "usage: mxroute [-c FILE] [--json] [--explain] DOMAIN|ADDRESS...\n"
	    "       mxroute [-c FILE] --socketmap ADDR:PORT\n");
	if (out == stderr) {
		fprintf(out, "Try 'mxroute --help' for more information.\n");
		return;
	}
	fprintf(out,
	    "Print the next hops for each destination, in order.\n\n"
	    "  -c, --config FILE   configuration (default " DAEMON_DEFAULT_CONFIG ")\n"
	    "  --json              machine-readable output: one JSON object, {\"routes\": [...]},\n"
	    "                      or {\"error\": \"...\"} with a non-zero exit\n"
	    "  --explain           show each step tried and why\n"
	    "  --socketmap A:P     answer Postfix socketmap lookups on A:P\n"
	    "  --repeat N          route every destination N more times (cache benchmark)\n"
	    "  -h, --help          show this help and exit\n"
	    "  -V, --version       show the version and exit\n\n"
	    "Exit status: 0 routed, 1 permanent failure, 2 temporary failure, 64 usage,\n"
	    "78 configuration error.\n");
}

/* A usage error: exit status 64 (EX_USAGE). */
static int
usage_error(const char *why)
{
	if (json_out)
		jsonout_error("usage: %s (mxroute --help)", why);
	usage(stderr);
	return EXIT_USAGE;
}

/* --json anywhere before "--": errors found while parsing argv are JSON too. */
static bool
has_json_option(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--json") == 0)
			return true;
	return false;
}

/* The configuration: -c FILE, else the default file when it exists, else
 * built-in defaults (resolv.conf nameservers, /etc/hosts). */
static struct config *
load_config(const char *path)
{
	char err[512];
	struct config *cfg;

	if (path == NULL && access(DAEMON_DEFAULT_CONFIG, F_OK) == 0)
		path = DAEMON_DEFAULT_CONFIG;
	cfg = path != NULL ? config_load(path, err, sizeof(err))
	                   : config_load_string("(defaults)", "", err, sizeof(err));
	if (cfg == NULL)
		report("%s", err);
	return cfg;
}

static struct resolver *
build_resolver(struct event_base *base, const struct config *cfg)
{
	struct resolver_local local = {
	    .hostname = cfg->relay.hostname,
	    .local_aliases = (const char *const *)cfg->relay.local_aliases.v,
	    .nlocal_aliases = cfg->relay.local_aliases.n,
	};
	char err[512];
	struct resolver *r = resolver_new(base, &cfg->resolver, &local, err, sizeof(err));

	if (r == NULL)
		report("%s", err);
	return r;
}

/* "127.0.0.1:10025" or "[::1]:10025". */
static int
parse_listen(const char *s, struct addr *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	unsigned long port;
	char *end;
	size_t hl;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - s);
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		s++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || port == 0 || port > 65535)
		return -1;
	return addr_parse(host, (uint16_t)port, out);
}

/* What SIGHUP needs to swap in a new resolver. */
struct server {
	struct event_base *base;
	const char *config_path;
	struct resolver *r;
	struct socketmap *sm;
	struct tls_policy *tp; /* smtp_tls_policy_maps answers; NULL = none */
};

/*
 * socketmap_tls_fn: the outbound TLS level of a next-hop domain as
 * Postfix's smtp_tls_policy_maps wants it ("OK dane"); keys that are not
 * domains (".parent" forms, addresses) are NOTFOUND.
 */
static void
tls_answer(const char *key, char *reply, size_t len, void *arg)
{
	struct server *s = arg;
	struct tls_policy_result tr;
	char dom[256];
	size_t n = strlen(key);

	if (n == 0 || n >= sizeof(dom) || key[0] == '.' || key[0] == '[' ||
	    strchr(key, '@') != NULL) {
		snprintf(reply, len, "NOTFOUND ");
		return;
	}
	for (size_t i = 0; i <= n; i++)
		dom[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
	if (n > 1 && dom[n - 1] == '.')
		dom[n - 1] = '\0';
	tls_policy_lookup(s->tp, dom, &tr);
	snprintf(reply, len, "OK %s", tls_level_name(tr.level));
}

/* SIGHUP: read the configuration again; keep the old one if it is bad. */
static void
reload_cb(void *arg)
{
	struct server *s = arg;
	struct config *cfg = load_config(s->config_path);
	struct resolver *r;
	struct tls_policy *tp;
	char err[512];

	if (cfg == NULL) {
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
	r = build_resolver(s->base, cfg);
	tp = tls_policy_new(cfg, err, sizeof(err));
	config_free(cfg); /* the resolver and the policy keep copies */
	if (r == NULL || tp == NULL) {
		if (tp == NULL)
			log_warnx("tls policy: %s", err);
		resolver_free(r);
		tls_policy_free(tp);
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
	tls_policy_free(s->tp);
	s->tp = tp;
	socketmap_set_resolver(s->sm, r);
	resolver_free(s->r);
	s->r = r;
	log_info("socketmap: configuration reloaded");
}

static int
run_socketmap(const struct config *cfg, const char *config_path, const char *listen)
{
	struct server s = {.config_path = config_path};
	struct addr a;
	char err[512];
	int rc = EXIT_CONFIG;

	if (parse_listen(listen, &a) == -1) {
		fprintf(stderr, "mxroute: --socketmap wants ADDR:PORT, not '%s'\n", listen);
		usage(stderr);
		return EXIT_USAGE;
	}
	if ((s.base = event_base_new()) == NULL || (s.r = build_resolver(s.base, cfg)) == NULL)
		goto out;
	s.sm = socketmap_new(s.base, s.r, &a, cfg->relay.remote_port, err, sizeof(err));
	if (s.sm == NULL) {
		log_warnx("%s", err);
		goto out;
	}
	if ((s.tp = tls_policy_new(cfg, err, sizeof(err))) == NULL) {
		log_warnx("tls policy: %s", err);
		goto out;
	}
	socketmap_set_tls_policy(s.sm, tls_answer, &s);
	if (daemon_signals(s.base, reload_cb, &s) == -1 || daemon_drop_privileges(cfg) == -1)
		goto out;
	log_info("socketmap: answering on %s", listen);
	event_base_dispatch(s.base);
	rc = 0;
out:
	socketmap_free(s.sm);
	tls_policy_free(s.tp);
	resolver_free(s.r);
	if (s.base != NULL)
		event_base_free(s.base);
	return rc;
}

static void
batch_cb(struct route_result *res, void *arg)
{
	struct slot *slot = arg;
	struct batch *b = slot->b;

	slot->res = res;
	if (--b->pending == 0)
		event_base_loopexit(b->base, NULL);
}

/* Route every destination concurrently; results land in b->slots. */
static int
route_all(struct resolver *r, struct batch *b, char **dests, int n, int flags)
{
	for (int i = 0; i < n; i++) {
		struct slot *s = &b->slots[i];

		resolver_result_free(s->res);
		s->res = NULL;
		s->b = b;
		if (resolver_route(r, dests[i], flags, batch_cb, s) == NULL)
			return -1;
		b->pending++;
	}
	if (b->pending > 0)
		event_base_dispatch(b->base);
	return 0;
}

/* {"routes": [one object per destination, in argument order]}; -1 on OOM. */
static void add_tls_json(
    struct json_object *r, const struct route_result *res, const struct tls_policy *tp);

static int
print_json(const struct slot *slots, int n, const struct tls_policy *tp)
{
	struct json_object *o = json_object_new_object();
	struct json_object *arr = json_object_new_array();
	int rc = -1;

	if (o == NULL || arr == NULL) {
		json_object_put(arr);
		goto out;
	}
	json_object_object_add(o, "routes", arr);
	for (int i = 0; i < n; i++) {
		struct json_object *r = routefmt_json(slots[i].res);

		if (r != NULL && tp != NULL)
			add_tls_json(r, slots[i].res, tp);
		if (r == NULL || json_object_array_add(arr, r) == -1) {
			json_object_put(r);
			goto out;
		}
	}
	rc = jsonout_print(stdout, o, true);
out:
	json_object_put(o);
	return rc;
}

/*
 * The outbound TLS level a hop would get (docs/delivery.md "TLS"): the
 * domain's, and for dane levels what DNS allows without asking TLSA here.
 */
static const char *
hop_tls(const struct tls_policy_result *tr, const struct route_hop *h, char *buf, size_t len)
{
	char why[200];
	int lvl;

	if (tr->level != CONFIG_TLS_DANE && tr->level != CONFIG_TLS_DANE_ONLY)
		return tls_level_name(tr->level);
	if (h->secure) {
		lvl = tls_policy_hop(tr, TLSA_NONE, why, sizeof(why));
		snprintf(buf, len,
		    "%s with usable TLSA (MX and address answers DNSSEC-secure), else %s",
		    tls_level_name(tr->level), lvl == -1 ? "deferred" : tls_level_name(lvl));
		return buf;
	}
	lvl = tls_policy_hop(tr, TLSA_INSECURE, why, sizeof(why));
	snprintf(buf, len, "%s (MX or address answers not DNSSEC-secure)",
	    lvl == -1 ? "deferred" : tls_level_name(lvl));
	return buf;
}

/* --explain: the TLS policy of each routed domain and what its hops get. */
static void
print_tls_text(const struct route_result *res, const struct tls_policy *tp)
{
	struct tls_policy_result tr;
	char buf[300];

	if (res->status != ROUTE_OK || res->domain == NULL)
		return;
	tls_policy_lookup(tp, res->domain, &tr);
	printf("  ; tls: %s (%s)\n", tls_level_name(tr.level), tr.reason);
	for (size_t i = 0; i < res->nhops; i++)
		printf("  ; tls %s: %s\n", res->hops[i].host,
		    hop_tls(&tr, &res->hops[i], buf, sizeof(buf)));
}

/* The same in JSON: "tls": {"level", "reason", "hops": [{host, dnssec, level}]}. */
static void
add_tls_json(struct json_object *r, const struct route_result *res, const struct tls_policy *tp)
{
	struct tls_policy_result tr;
	struct json_object *o, *hops;
	char buf[300];

	if (res->status != ROUTE_OK || res->domain == NULL)
		return;
	tls_policy_lookup(tp, res->domain, &tr);
	o = json_object_new_object();
	hops = json_object_new_array();
	json_object_object_add(o, "level", json_object_new_string(tls_level_name(tr.level)));
	json_object_object_add(o, "reason", json_object_new_string(tr.reason));
	for (size_t i = 0; i < res->nhops; i++) {
		struct json_object *h = json_object_new_object();

		json_object_object_add(h, "host", json_object_new_string(res->hops[i].host));
		json_object_object_add(h, "dnssec", json_object_new_boolean(res->hops[i].secure));
		json_object_object_add(h, "level",
		    json_object_new_string(hop_tls(&tr, &res->hops[i], buf, sizeof(buf))));
		json_object_array_add(hops, h);
	}
	json_object_object_add(o, "hops", hops);
	json_object_object_add(r, "tls", o);
}

static int
print_results(const struct slot *slots, int n, const struct tls_policy *tp, int flags)
{
	int rc = EXIT_ROUTED;

	for (int i = 0; i < n; i++) {
		const struct route_result *res = slots[i].res;

		if (res->status == ROUTE_TEMPFAIL)
			rc = EXIT_TEMP;
		else if (res->status == ROUTE_PERMFAIL && rc != EXIT_TEMP)
			rc = EXIT_PERM;
		if (!json_out) {
			routefmt_text(res, stdout);
			if ((flags & RESOLVER_EXPLAIN) && tp != NULL)
				print_tls_text(res, tp);
		}
	}
	if (json_out && print_json(slots, n, tp) == -1) {
		report("cannot print the routes (out of memory or write error)");
		return EXIT_TEMP;
	}
	return rc;
}

static void
print_stats(const struct resolver *r)
{
	struct resolver_stats st;

	resolver_get_stats(r, &st);
	fprintf(stderr,
	    "mxroute: dns: %llu queries, %llu udp, %llu tcp, %llu timeouts, "
	    "%llu truncated; cache: %llu hits, %llu misses, %zu entries\n",
	    st.dns_queries, st.dns_udp, st.dns_tcp, st.dns_timeouts, st.dns_truncated,
	    st.cache_hits, st.cache_misses, st.cache_entries);
}

static double
now_s(void)
{
	return (double)clock_us() / 1e6;
}

static int
run_routes(const struct config *cfg, char **dests, int n, int flags, unsigned long repeat)
{
	struct batch b = {0};
	struct resolver *r = NULL;
	struct tls_policy *tp = NULL;
	int rc = EXIT_CONFIG;
	double t0;
	char err[512];

	b.base = event_base_new();
	b.slots = calloc((size_t)n, sizeof(*b.slots));
	if (b.base == NULL || b.slots == NULL)
		goto nomem;
	if ((r = build_resolver(b.base, cfg)) == NULL)
		goto out;
	/* A broken policy file is -t's to report; routes are still shown. */
	if ((tp = tls_policy_new(cfg, err, sizeof(err))) == NULL)
		report("tls policy: %s", err);
	t0 = now_s();
	if (route_all(r, &b, dests, n, flags) == -1)
		goto nomem;
	if (repeat > 0) {
		double t1 = now_s(), t2;

		for (unsigned long k = 0; k < repeat; k++)
			if (route_all(r, &b, dests, n, flags) == -1)
				goto nomem;
		t2 = now_s();
		fprintf(stderr,
		    "mxroute: first pass: %d routes in %.4f s; "
		    "%lu cached passes: %.0f routes/s\n",
		    n, t1 - t0, repeat, (double)repeat * n / (t2 - t1));
		print_stats(r);
	} else if (getenv("MXROUTE_TIMING") != NULL) {
		fprintf(stderr, "mxroute: %d routes in %.4f s\n", n, now_s() - t0);
		print_stats(r);
	}
	rc = print_results(b.slots, n, tp, flags);
	goto out;
nomem:
	report("out of memory");
	rc = EXIT_TEMP;
out:
	resolver_free(r);
	tls_policy_free(tp);
	if (b.slots != NULL)
		for (int i = 0; i < n; i++)
			resolver_result_free(b.slots[i].res);
	free(b.slots);
	if (b.base != NULL)
		event_base_free(b.base);
	return rc;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"json", no_argument, NULL, 'j'},
	    {"explain", no_argument, NULL, 'e'},
	    {"socketmap", required_argument, NULL, 's'},
	    {"repeat", required_argument, NULL, 'r'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *config_path = NULL, *socketmap = NULL;
	unsigned long repeat = 0;
	int ch, flags = 0, rc;
	struct config *cfg;
	char *end;

	log_init("mxroute", LOG_LEVEL_WARN, false);
	json_out = has_json_option(argc, argv);
	while ((ch = getopt_long(argc, argv, "c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': config_path = optarg; break;
		case 'j': json_out = true; break;
		case 'e': flags |= RESOLVER_EXPLAIN; break;
		case 's': socketmap = optarg; break;
		case 'r':
			errno = 0;
			repeat = strtoul(optarg, &end, 10);
			if (errno != 0 || *end != '\0' || repeat > 100000000)
				return usage_error("--repeat wants a number up to 100000000");
			break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("mxroute (mxbroker) %s\n", MXB_VERSION); return 0;
		default: return usage_error("unknown option or missing argument");
		}
	}
	if (socketmap == NULL && optind == argc)
		return usage_error("no destination given");
	if (socketmap != NULL && optind < argc)
		return usage_error("--socketmap takes no destinations");
	if ((cfg = load_config(config_path)) == NULL)
		return EXIT_CONFIG;
	if (socketmap != NULL) {
		log_init("mxroute", (enum log_level)cfg->options.log_level, cfg->options.syslog);
		rc = run_socketmap(cfg, config_path, socketmap);
	} else {
		rc = run_routes(cfg, argv + optind, argc - optind, flags, repeat);
	}
	config_free(cfg);
	return rc;
}
