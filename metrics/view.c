/* view.c - poll, rank and print agents for metricview (see view.h). */
#include "metrics/view.h"

#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "common/fileio.h"
#include "common/jsonout.h"
#include "common/log.h"
#include "metrics/report.h"
#include "metrics/sysstat.h"

/* Sends at 0, T/3 and 2T/3 of the timeout: one lost datagram is no failure. */
#define VIEW_RETRIES 2

static int
resolve(const char *host, uint16_t port, struct addr *out, char *err, size_t errlen)
{
	struct addrinfo hints, *res;
	int rc;

	if (addr_parse(host, port, out) == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", host, gai_strerror(rc));
		return -1;
	}
	rc = addr_from_sockaddr(res->ai_addr, res->ai_addrlen, out);
	freeaddrinfo(res);
	if (rc == -1) {
		snprintf(err, errlen, "%s: no IPv4 or IPv6 address", host);
		return -1;
	}
	addr_set_port(out, port);
	return 0;
}

static int
parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v == 0 || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int
view_parse_target(
    const char *arg, uint16_t default_port, struct view_host *h, char *err, size_t errlen)
{
	char host[VIEW_NAME_MAX];
	const char *colon = strrchr(arg, ':');
	uint16_t port = default_port;

	memset(h, 0, sizeof(h[0]));
	if (snprintf(h->name, sizeof(h->name), "%s", arg) >= (int)sizeof(h->name)) {
		snprintf(err, errlen, "host name too long");
		return -1;
	}
	snprintf(host, sizeof(host), "%s", arg);
	if (arg[0] == '[') {
		char *close = strchr(host, ']');

		if (close == NULL ||
		    (close[1] != '\0' && (close[1] != ':' || parse_port(close + 2, &port) == -1))) {
			snprintf(err, errlen, "%s: expected [ADDRESS]:PORT", arg);
			return -1;
		}
		*close = '\0';
		memmove(host, host + 1, strlen(host));
	} else if (colon != NULL && strchr(arg, ':') == colon) {
		/* Exactly one colon: HOST:PORT.  More: a bare IPv6 address. */
		if (parse_port(colon + 1, &port) == -1) {
			snprintf(err, errlen, "%s: bad port '%s'", arg, colon + 1);
			return -1;
		}
		host[colon - arg] = '\0';
	}
	return resolve(host, port, &h->addr, err, errlen);
}

/* Decode base64 text (whitespace around it ignored) into out. */
static int
decode_b64(const char *text, uint8_t *out, size_t cap, size_t *len)
{
	char clean[700];
	size_t n = 0, pad = 0;
	int got;

	for (const char *p = text; *p != '\0'; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			continue;
		if (n + 1 >= sizeof(clean))
			return -1;
		clean[n++] = *p;
	}
	clean[n] = '\0';
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > cap)
		return -1;
	got = EVP_DecodeBlock(out, (const unsigned char *)clean, (int)n);
	if (got < 0)
		return -1;
	pad = (clean[n - 1] == '=') + (clean[n - 2] == '=');
	*len = (size_t)got - pad;
	return *len > 0 ? 0 : -1;
}

static int
copy_key(const struct config_key *k, struct view_key *out, char *err, size_t errlen)
{
	if (k->algorithm != CONFIG_HMAC_SHA256 || k->secret_len > sizeof(out->secret)) {
		snprintf(err, errlen,
		    "key '%s': polls are signed with hmac-sha256 and a "
		    "secret of at most %zu bytes",
		    k->name, sizeof(out->secret));
		return -1;
	}
	snprintf(out->name, sizeof(out->name), "%s", k->name);
	memcpy(out->secret, k->secret, k->secret_len);
	out->key.secret_len = k->secret_len;
	return 0;
}

/* The key statement to use: `name`, else the metrics key, else the only one. */
static const struct config_key *
pick_key(const struct config *cfg, const char *path, const char *name, char *err, size_t errlen)
{
	if (name == NULL && cfg->metrics.key != NULL)
		return cfg->metrics.key;
	if (name == NULL && cfg->nkeys == 1)
		return &cfg->keys[0];
	for (size_t i = 0; name != NULL && i < cfg->nkeys; i++)
		if (strcmp(cfg->keys[i].name, name) == 0)
			return &cfg->keys[i];
	if (name != NULL)
		snprintf(err, errlen, "%s: no key \"%s\"", path, name);
	else
		snprintf(err, errlen,
		    "%s: several keys and no metrics { key }: pick one with --key", path);
	return NULL;
}

int
view_load_key(const char *path, const char *name, struct view_key *out, char *err, size_t errlen)
{
	char cerr[512], text[1024];
	struct config *cfg = config_load(path, cerr, sizeof(cerr));
	const struct config_key *k;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->key.name = out->name;
	out->key.secret = out->secret;
	out->key.algorithm = CONFIG_HMAC_SHA256;
	out->key.algorithm_name = "hmac-sha256";
	if (cfg != NULL && cfg->nkeys > 0) {
		if ((k = pick_key(cfg, path, name, err, errlen)) != NULL)
			rc = copy_key(k, out, err, errlen);
	} else if (file_read_buf(path, text, sizeof(text)) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	} else if (decode_b64(text, out->secret, sizeof(out->secret), &out->key.secret_len) == -1) {
		snprintf(
		    err, errlen, "%s: neither key statements (%s) nor a base64 secret", path, cerr);
	} else if (name != NULL) {
		snprintf(err, errlen, "%s: a bare secret has no key names: --key %s cannot apply",
		    path, name);
	} else {
		snprintf(out->name, sizeof(out->name), "key-file");
		rc = 0;
	}
	config_free(cfg);
	return rc;
}

int
view_parse_threshold(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno != 0 || end == s || !isfinite(*out) || *out < 0)
		return -1;
	if (*end == ':')
		end++;
	return *end == '\0' ? 0 : -1;
}

struct poll_run {
	struct event_base *base;
	size_t pending;
};

struct poll_ctx {
	struct poll_run *run;
	struct view_host *host;
};

static void
polled_cb(const struct metric_poll_result *res, void *arg)
{
	struct poll_ctx *ctx = arg;
	struct view_host *h = ctx->host;

	h->done = true;
	h->rtt_us = res->rtt_us;
	switch (res->status) {
	case METRIC_POLL_OK:
		h->ok = true;
		h->v = res->values;
		break;
	case METRIC_POLL_TIMEOUT:
		if (res->discarded > 0)
			snprintf(h->error, sizeof(h->error), "no valid answer (%u rejected: %s)",
			    res->discarded, metric_strerror(res->last_discard));
		else
			snprintf(h->error, sizeof(h->error), "no answer (timeout)");
		break;
	case METRIC_POLL_REFUSED:
		snprintf(h->error, sizeof(h->error), "refused: %s",
		    res->proto == METRIC_POLL_LBCD ? lbcd_status_str(res->code)
		                                   : metric_code_str(res->code));
		break;
	case METRIC_POLL_KEY_MISMATCH:
		h->key_mismatch = true;
		snprintf(
		    h->error, sizeof(h->error), "key mismatch (%s)", metric_code_str(res->code));
		break;
	}
	if (--ctx->run->pending == 0)
		event_base_loopbreak(ctx->run->base);
}

int
view_poll(struct view_host *hosts, size_t n, enum metric_poll_proto proto,
    const struct config_key *key, unsigned timeout_ms)
{
	struct poll_run run = {event_base_new(), 0};
	struct metric_poller *p = NULL;
	struct poll_ctx *ctx = calloc(n, sizeof(*ctx));
	int rc = -1;

	if (run.base == NULL || ctx == NULL || n > METRIC_POLLER_MAX ||
	    (p = metric_poller_new(run.base, (unsigned)n, NULL, NULL)) == NULL)
		goto done;
	for (size_t i = 0; i < n; i++) {
		struct metric_poll_target t = {hosts[i].addr, proto, key, timeout_ms, VIEW_RETRIES};

		ctx[i].run = &run;
		ctx[i].host = &hosts[i];
		if (metric_poll_start(p, &t, polled_cb, &ctx[i], NULL) == -1) {
			hosts[i].done = true;
			snprintf(hosts[i].error, sizeof(hosts[i].error), "cannot send: %s",
			    strerror(errno));
			continue;
		}
		run.pending++;
	}
	if (run.pending > 0)
		event_base_dispatch(run.base);
	rc = 0;
done:
	metric_poller_free(p);
	free(ctx);
	if (run.base != NULL)
		event_base_free(run.base);
	return rc;
}

#define VIEW_STATUS_MAX 65536 /* a /status document is a few KiB */

struct fetch_ctx {
	struct poll_run *run;
	struct view_host *host;
	struct evhttp_connection *conn;
};

/* Take the "drain" object of a /status body. */
static void
parse_status(struct view_host *h, struct evbuffer *body)
{
	size_t len = evbuffer_get_length(body);
	struct json_tokener *tok;
	struct json_object *doc = NULL, *drain;

	if (len == 0 || len > VIEW_STATUS_MAX || (tok = json_tokener_new()) == NULL) {
		snprintf(h->drain_error, sizeof(h->drain_error), "status: empty or too large");
		return;
	}
	doc = json_tokener_parse_ex(tok, (const char *)evbuffer_pullup(body, -1), (int)len);
	json_tokener_free(tok);
	if (doc == NULL || !json_object_object_get_ex(doc, "drain", &drain) ||
	    drain_from_json(drain, &h->drain) == -1)
		snprintf(h->drain_error, sizeof(h->drain_error),
		    "status: no drain details (not draining any more?)");
	else
		h->drain_known = true;
	json_object_put(doc);
}

static void
fetched_cb(struct evhttp_request *req, void *arg)
{
	struct fetch_ctx *ctx = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

	if (code == HTTP_OK)
		parse_status(ctx->host, evhttp_request_get_input_buffer(req));
	else if (code != 0)
		snprintf(ctx->host->drain_error, sizeof(ctx->host->drain_error), "status: HTTP %d",
		    code);
	else
		snprintf(
		    ctx->host->drain_error, sizeof(ctx->host->drain_error), "status: no answer");
	if (--ctx->run->pending == 0)
		event_base_loopbreak(ctx->run->base);
}

static int
fetch_start(struct fetch_ctx *ctx, uint16_t port, unsigned timeout_ms)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct evhttp_request *req;
	char host[ADDR_STRLEN];

	addr_host_str(&ctx->host->addr, host, sizeof(host));
	ctx->conn = evhttp_connection_base_new(ctx->run->base, NULL, host, port);
	if (ctx->conn == NULL || (req = evhttp_request_new(fetched_cb, ctx)) == NULL)
		return -1;
	evhttp_connection_set_timeout_tv(ctx->conn, &tv);
	evhttp_connection_set_retries(ctx->conn, 0);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Host", host);
	return evhttp_make_request(ctx->conn, req, EVHTTP_REQ_GET, "/status");
}

int
view_fetch_drain(struct view_host *hosts, size_t n, uint16_t http_port, unsigned timeout_ms)
{
	struct poll_run run = {event_base_new(), 0};
	struct fetch_ctx *ctx = calloc(n > 0 ? n : 1, sizeof(*ctx));
	int rc = -1;

	if (run.base == NULL || ctx == NULL) {
		log_warnx("cannot start fetching /status: out of memory");
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		if (!hosts[i].ok || (hosts[i].v.flags & METRIC_F_DRAINING) == 0)
			continue;
		ctx[i].run = &run;
		ctx[i].host = &hosts[i];
		if (fetch_start(&ctx[i], http_port, timeout_ms) == -1) {
			snprintf(hosts[i].drain_error, sizeof(hosts[i].drain_error),
			    "status: cannot connect");
			continue;
		}
		run.pending++;
	}
	if (run.pending > 0)
		event_base_dispatch(run.base);
	rc = 0;
done:
	for (size_t i = 0; ctx != NULL && i < n; i++)
		if (ctx[i].conn != NULL)
			evhttp_connection_free(ctx[i].conn);
	free(ctx);
	if (run.base != NULL)
		event_base_free(run.base);
	return rc;
}

static int
rank_cmp(const void *x, const void *y)
{
	const struct view_host *a = x, *b = y;

	if (a->ok != b->ok)
		return a->ok ? -1 : 1;
	if (a->v.rating != b->v.rating)
		return a->v.rating > b->v.rating ? -1 : 1;
	return strcmp(a->name, b->name);
}

void
view_sort(struct view_host *hosts, size_t n)
{
	qsort(hosts, n, sizeof(hosts[0]), rank_cmp);
}

static void
flag_words(uint16_t f, char *buf, size_t len)
{
	static const struct {
		uint16_t bit;
		const char *word;
	} words[] = {
	    {METRIC_F_DRAINING, "draining"},
	    {METRIC_F_RELAY, "relay"},
	    {METRIC_F_RELAY_DOWN, "relay-down"},
	    {METRIC_F_CPU_DERIVED, "cpu-derived"},
	    {METRIC_F_PENALTY, "memory-penalty"},
	    {METRIC_F_RELAY_FULL, "relay-full"},
	    {METRIC_F_QUEUE_FAIL, "queue-fail"},
	    {METRIC_F_DISK_RESERVE, "disk-reserve"},
	    {METRIC_F_PAUSED, "paused"},
	    {METRIC_F_LBCD, "lbcd"},
	};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if ((f & words[i].bit) == 0)
			continue;
		int w =
		    snprintf(buf + used, len - used, "%s%s", used > 0 ? "," : "", words[i].word);

		if (w < 0 || (size_t)w >= len - used)
			break;
		used += (size_t)w;
	}
}

/* "drained: kernel update (by alice at ...)" or why that is not known. */
static void
drain_note(const struct view_host *h, char *buf, size_t len)
{
	char text[DRAIN_REASON_MAX + DRAIN_WHO_MAX + DRAIN_WHEN_MAX + 16];

	if (h->drain_known)
		drain_describe(&h->drain, text, sizeof(text));
	else
		snprintf(text, sizeof(text), "reason unknown%s%s%s",
		    h->drain_error[0] != '\0' ? " (" : "", h->drain_error,
		    h->drain_error[0] != '\0' ? ")" : "");
	snprintf(buf, len, "%s", text);
}

static void
print_row(FILE *out, const struct view_host *h)
{
	const struct metric_values *v = &h->v;
	const char *why = metric_unavailable_str(v->flags);
	char sess[32], flags[96], note[512] = "";

	if (!h->ok) {
		fprintf(out, "%-28s %6s  %s\n", h->name, "-", h->error);
		return;
	}
	snprintf(sess, sizeof(sess), "%u/%u", v->sessions, v->capacity);
	flag_words(v->flags, flags, sizeof(flags));
	if ((v->flags & METRIC_F_DRAINING) != 0) {
		char d[400];

		drain_note(h, d, sizeof(d));
		snprintf(note, sizeof(note), "  drained: %s", d);
	} else if (why != NULL) {
		snprintf(note, sizeof(note), "  unavailable: %s", why);
	}
	fprintf(out, "%-28s %6.0f %6.2f %8.2f %7.2f %6.2f %13s %9llu  %s%s\n", h->name,
	    v->rating / 1000.0, v->availability / 1000.0, v->workload / 1000.0, v->penalty / 1000.0,
	    v->load / 1000.0, sess, (unsigned long long)(v->free_bytes >> 20), flags, note);
}

void
view_print_table(FILE *out, const struct view_host *hosts, size_t n)
{
	fprintf(out, "%-28s %6s %6s %8s %7s %6s %13s %9s  %s\n", "Host", "Rating", "Avail",
	    "Workload", "Penalty", "Load%", "Sessions", "Free MiB", "Flags");
	for (size_t i = 0; i < n; i++)
		print_row(out, &hosts[i]);
}

/* null when not draining; else who/why/when, or the reason it is not known. */
static struct json_object *
drain_json(const struct view_host *h)
{
	struct json_object *o;

	if ((h->v.flags & METRIC_F_DRAINING) == 0)
		return NULL;
	if (h->drain_known)
		return drain_to_json(&h->drain);
	o = json_object_new_object();
	json_object_object_add(o, "reason", NULL);
	json_object_object_add(o, "by", NULL);
	json_object_object_add(o, "at", NULL);
	json_object_object_add(o, "error",
	    json_object_new_string(
	        h->drain_error[0] != '\0' ? h->drain_error : "status not fetched"));
	return o;
}

static struct json_object *
host_json(const struct view_host *h)
{
	struct json_object *o = json_object_new_object();
	const struct metric_values *v = &h->v;
	const char *why = metric_unavailable_str(v->flags);
	char where[ADDR_STRLEN], flags[96];

	json_object_object_add(o, "host", json_object_new_string(h->name));
	json_object_object_add(
	    o, "address", json_object_new_string(addr_str(&h->addr, where, sizeof(where))));
	json_object_object_add(o, "ok", json_object_new_boolean(h->ok));
	if (!h->ok) {
		json_object_object_add(o, "error", json_object_new_string(h->error));
		json_object_object_add(o, "key_mismatch", json_object_new_boolean(h->key_mismatch));
		return o;
	}
	json_object_object_add(o, "available", json_object_new_boolean(why == NULL));
	json_object_object_add(o, "unavailable", why != NULL ? json_object_new_string(why) : NULL);
	flag_words(v->flags, flags, sizeof(flags));
	metric_json_terms(o, v);
	json_object_object_add(o, "load_percent", metric_json_milli(v->load));
	json_object_object_add(o, "cpu_rating", json_object_new_int(v->cpu_rating));
	json_object_object_add(o, "sessions", json_object_new_int64(v->sessions));
	json_object_object_add(o, "capacity", json_object_new_int64(v->capacity));
	json_object_object_add(
	    o, "free_memory_bytes", json_object_new_int64((int64_t)v->free_bytes));
	json_object_object_add(
	    o, "memory_goal_bytes", json_object_new_int64((int64_t)v->goal_bytes));
	json_object_object_add(
	    o, "draining", json_object_new_boolean((v->flags & METRIC_F_DRAINING) != 0));
	json_object_object_add(o, "drain", drain_json(h));
	json_object_object_add(o, "flags", json_object_new_string(flags));
	json_object_object_add(o, "computed_at", metric_json_milli((int64_t)v->computed_ms));
	json_object_object_add(o, "compute_interval", json_object_new_int64(v->interval));
	json_object_object_add(o, "rtt_ms", metric_json_milli(h->rtt_us));
	return o;
}

void
view_print_json(FILE *out, const struct view_host *hosts, size_t n)
{
	struct json_object *root = json_object_new_object();
	struct json_object *list = json_object_new_array();

	for (size_t i = 0; i < n; i++)
		json_object_array_add(list, host_json(&hosts[i]));
	json_object_object_add(root, "hosts", list);
	jsonout_print(out, root, true);
	json_object_put(root);
}

enum view_check_state
view_check_state(const struct view_host *hosts, size_t n, const struct view_check *c)
{
	enum view_check_state st = VIEW_OK;

	for (size_t i = 0; i < n; i++)
		if (!hosts[i].ok && !hosts[i].key_mismatch)
			return VIEW_UNKNOWN;
	for (size_t i = 0; i < n; i++) {
		double r = hosts[i].v.rating / 1000.0;

		if (hosts[i].key_mismatch) {
			st = VIEW_CRITICAL;
			continue;
		}
		if ((hosts[i].v.flags & METRIC_F_DRAINING) != 0)
			continue;
		if (r < c->crit)
			st = VIEW_CRITICAL;
		else if (r < c->warn && st == VIEW_OK)
			st = VIEW_WARNING;
	}
	return st;
}

int
view_exit_status(const struct view_host *hosts, size_t n)
{
	int rc = 0;

	for (size_t i = 0; i < n; i++) {
		if (!hosts[i].ok && !hosts[i].key_mismatch)
			return VIEW_UNKNOWN;
		if (hosts[i].key_mismatch)
			rc = VIEW_CRITICAL;
	}
	return rc;
}

static const char *const state_names[] = {"OK", "WARNING", "CRITICAL", "UNKNOWN"};

/* A number as perfdata wants it: at most three decimals, no trailing zeros. */
static const char *
perf_number(double v, char *buf, size_t len)
{
	size_t n;

	snprintf(buf, len, "%.3f", v);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	return buf;
}

/* The perfdata label: quoted, a quote doubled (plugin guidelines), no '='. */
static void
perf_label(FILE *out, const char *name)
{
	fputc('\'', out);
	for (const char *p = name; *p != '\0'; p++) {
		if (*p == '\'')
			fputc('\'', out);
		fputc(*p == '=' ? '_' : *p, out);
	}
	fputc('\'', out);
}

static void
print_perfdata(FILE *out, const struct view_host *hosts, size_t n, const struct view_check *c)
{
	char v[32], w[32], cr[32], max[32];

	perf_number(c->warn, w, sizeof(w));
	perf_number(c->crit, cr, sizeof(cr));
	perf_number(c->max, max, sizeof(max));
	fprintf(out, " |");
	for (size_t i = 0; i < n; i++) {
		fputc(' ', out);
		perf_label(out, hosts[i].name);
		fprintf(out, "=%s;%s:;%s:;0;%s",
		    hosts[i].ok ? perf_number(hosts[i].v.rating / 1000.0, v, sizeof(v)) : "U", w,
		    cr, max);
	}
}

static void
print_host_text(FILE *out, const struct view_host *h)
{
	const char *why = metric_unavailable_str(h->v.flags);
	char note[512] = "";

	if (!h->ok) {
		fprintf(out, " %s %s", h->name, h->error);
		return;
	}
	if ((h->v.flags & METRIC_F_DRAINING) != 0) {
		char d[400];

		drain_note(h, d, sizeof(d));
		snprintf(note, sizeof(note), " (draining: %s)", d);
	} else if (why != NULL) {
		snprintf(note, sizeof(note), " (unavailable: %s)", why);
	}
	/* A '|' would start the perfdata early. */
	for (char *p = note; *p != '\0'; p++)
		if (*p == '|')
			*p = '/';
	fprintf(out, " %s rating %.1f%s", h->name, h->v.rating / 1000.0, note);
}

enum view_check_state
view_print_check(FILE *out, const struct view_host *hosts, size_t n, const struct view_check *c)
{
	enum view_check_state st = view_check_state(hosts, n, c);

	fprintf(out, "METRIC %s -", state_names[st]);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', out);
		print_host_text(out, &hosts[i]);
	}
	print_perfdata(out, hosts, n, c);
	fputc('\n', out);
	return st;
}

enum view_check_state
view_print_unknown(FILE *out, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *p = msg; *p != '\0'; p++)
		if (*p == '|' || *p == '\n')
			*p = *p == '|' ? '/' : ' ';
	fprintf(out, "METRIC UNKNOWN - %s\n", msg);
	return VIEW_UNKNOWN;
}
