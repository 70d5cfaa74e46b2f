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
};

/* SIGHUP: read the configuration again; keep the old one if it is bad. */
static void
reload_cb(void *arg)
{
	struct server *s = arg;
	struct config *cfg = load_config(s->config_path);
	struct resolver *r;

	if (cfg == NULL) {
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
	r = build_resolver(s->base, cfg);
	config_free(cfg); /* the resolver keeps copies */
	if (r == NULL) {
		log_warnx("reload failed: keeping the running configuration");
		return;
	}
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
	if (daemon_signals(s.base, reload_cb, &s) == -1 || daemon_drop_privileges(cfg) == -1)
		goto out;
	log_info("socketmap: answering on %s", listen);
	event_base_dispatch(s.base);
	rc = 0;
out:
	socketmap_free(s.sm);
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
static int
print_json(const struct slot *slots, int n)
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

static int
print_results(const struct slot *slots, int n)
{
	int rc = EXIT_ROUTED;

	for (int i = 0; i < n; i++) {
		const struct route_result *res = slots[i].res;

		if (res->status == ROUTE_TEMPFAIL)
			rc = EXIT_TEMP;
		else if (res->status == ROUTE_PERMFAIL && rc != EXIT_TEMP)
			rc = EXIT_PERM;
		if (!json_out)
			routefmt_text(res, stdout);
	}
	if (json_out && print_json(slots, n) == -1) {
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
	int rc = EXIT_CONFIG;
	double t0;

	b.base = event_base_new();
	b.slots = calloc((size_t)n, sizeof(*b.slots));
	if (b.base == NULL || b.slots == NULL)
		goto nomem;
	if ((r = build_resolver(b.base, cfg)) == NULL)
		goto out;
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
	rc = print_results(b.slots, n);
	goto out;
nomem:
	report("out of memory");
	rc = EXIT_TEMP;
out:
	resolver_free(r);
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
